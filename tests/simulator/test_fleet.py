"""An autoscaled stack's simulated endpoint: replicas behind one Service, scaled by the emulated HPA,
its Deployment served where the Kubernetes API has it, and the load tester recording the replicas."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys

import aiohttp

from analysis.frame import stage_frame
from analysis.loader import load_runs
from loadtest.kube import deployment_path
from loadtest.simulator.app import SimulatedEndpoint
from loadtest.simulator.fleet import Fleet
from loadtest.simulator.runtime import Stream
from loadtest.targets import free_port, stop_process
from stacks.outputs import service_name

from ..loadtest.conftest import REPO

STACK = "llama3-8b-g2-fleet"


class _Sink(Stream):
    """A client that takes every token and never leaves."""

    def prepare(self, seq):
        return b"x"

    def send(self, data):
        return True

    def alive(self):
        return True

    def finish(self, seq, reason):
        pass


def test_the_hpa_scales_out_on_the_queue_and_back_in_after_the_window(stacks):
    spec = stacks[STACK]
    spec = dataclasses.replace(spec, autoscale=dataclasses.replace(spec.autoscale, scale_down_window=0))

    async def main():
        async with SimulatedEndpoint(spec, port=0, hpa_sync_s=3600, replica_start_s=0.2) as ep:
            fleet = ep.runtime
            assert isinstance(fleet, Fleet) and fleet.ready_count() == 1
            seqs = [fleet.submit(2000, 400, _Sink()) for _ in range(120)]  # far beyond one replica's batch
            await asyncio.sleep(0.05)
            waiting = fleet.engine.num_waiting
            assert waiting > 8
            fleet.sync()  # ceil(1 x waiting / 8), clamped to 4
            assert fleet.desired_replicas == 4 and fleet.ready_count() == 1  # new replicas are starting
            await asyncio.sleep(0.3)
            assert fleet.ready_count() == 4
            async with aiohttp.ClientSession() as http, \
                    http.get(ep.url + deployment_path(spec.namespace, service_name(spec))) as r:
                d = await r.json()
            assert d["spec"]["replicas"] == 4 and d["status"]["availableReplicas"] == 4
            # new requests go round robin to the ready replicas
            more = [fleet.submit(100, 10, _Sink()) for _ in range(8)]
            owners = {id(fleet.owner[id(s)][1]) for s in more}
            assert len(owners) == 4
            for s in seqs + more:
                fleet.cancel(s)
            await asyncio.sleep(0.05)
            fleet.sync()  # empty queues: down to minReplicas at once (window 0), drained replicas leave
            assert fleet.desired_replicas == 1 and fleet.ready_count() == 1
            fleet.sync()
            assert len(fleet.replicas) == 1

    asyncio.run(main())


def test_the_load_tester_records_replicas_over_time(tmp_path):
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "loadtest.simulator", "serve", "--stack", STACK, "--host",
                            "127.0.0.1", "--port", str(port), "--hpa-sync-s", "0.5", "--replica-start-s", "1"],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert sim.stdout is not None and "listening" in sim.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        done = subprocess.run(
            [sys.executable, "-m", "loadtest", "run", "--stack", STACK, "--endpoint", url, "--dialect", "openai",
             "--model", "meta-llama/Llama-3.1-8B", "--kube-api", url, "--no-progress", "--mode", "rate", "--levels",
             "40", "--requests-per-level", "240", "--input-len", "1500", "--output-len", "32", "--scrape-interval",
             "0.5", "--no-model-check", "--results-dir", str(tmp_path)],
            cwd=REPO, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        stop_process(sim)
    run_dir = tmp_path / STACK
    (run_dir,) = run_dir.iterdir()
    stage = json.loads((run_dir / "summary.json").read_text())["stages"][0]
    assert stage["completed"] == 240
    assert stage["serverMetrics"]["replicasMax"] >= 2, stage["serverMetrics"]
    lines = [json.loads(x) for x in (run_dir / "server_metrics.jsonl").read_text().splitlines()]
    assert any(k.startswith("kube_deployment_status_replicas_available{") for x in lines for k in x["samples"])
    frame, _ = stage_frame(load_runs([str(run_dir)]))
    assert frame["server_replicas_max"].iloc[0] >= 2

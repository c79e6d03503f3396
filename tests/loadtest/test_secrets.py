"""No secret reaches a results file, a record or the console: the API key is sent, never written."""

from __future__ import annotations

import json

from loadtest.results import redact_url

from .conftest import endpoint_args, results_dir_from, run_cli, written_files

CANARY = "sk-canary" + "Q9x" * 10  # key-shaped, never a real one


def _everything_written(run_dir) -> str:
    return "\n".join(written_files(run_dir).values())


def test_a_keyed_simulated_server_gets_the_key_and_no_file_holds_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LOADTEST_API_KEY", CANARY)
    code, out, err = run_cli(capsys, "run", "--stack", "llama2-7b-g2-external", "--target", "sim", "--mode", "batch",
                             "--levels", "2", "--requests-per-level", "4", "--output-len", "4", "--input-len", "16",
                             "--results-dir", str(tmp_path), "--no-progress")
    assert code == 0, err
    run_dir = results_dir_from(out)
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["error"] is None for r in records)  # the key was required and sent
    assert CANARY not in _everything_written(run_dir) and CANARY not in out + err


def test_a_wrong_key_is_refused_before_anything_is_written(capsys, tmp_path, monkeypatch):
    import asyncio
    import threading

    from loadtest.simulator.app import SimulatedEndpoint
    from stacks.loader import load_stack_file, stack_files

    spec = load_stack_file(stack_files()["llama2-7b-g2-external"])
    loop = asyncio.new_event_loop()
    ep = SimulatedEndpoint(spec, port=0, api_key="the-right-key-0000")
    loop.run_until_complete(ep.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("LOADTEST_API_KEY", CANARY)
        code, out, err = run_cli(capsys, "run", *endpoint_args(ep.url, model=spec.served_name), "--mode", "batch",
                                 "--levels", "1", "--requests-per-level", "2", "--output-len", "2",
                                 "--results-dir", str(tmp_path))
        # an external vLLM stack answers nothing without its key: not even the health path
        import httpx

        assert httpx.get(ep.url + "/health").status_code == 401
        assert httpx.get(ep.url + "/metrics").status_code == 401
        assert httpx.post(ep.url + "/tokenize", json={"prompt": "hi"}).status_code == 401
    finally:
        asyncio.run_coroutine_threadsafe(ep.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    assert code == 3 and "refused a wrong API key" in err and "LOADTEST_API_KEY" in err
    assert CANARY not in out + err and not list(tmp_path.iterdir())  # nothing written before the check


def test_credentials_in_urls_are_redacted_before_they_are_written(capsys, tmp_path, fixture_url):
    assert redact_url(f"http://bench:{CANARY}@10.0.0.1:8000/v1") == "http://bench:<redacted>@10.0.0.1:8000/v1"
    assert redact_url(f"http://h:8002/metrics?api_key={CANARY}&x=1") == "http://h:8002/metrics?api_key=<redacted>&x=1"
    host = fixture_url.removeprefix("http://")
    code, out, err = run_cli(capsys, "run", *endpoint_args(f"http://bench:{CANARY}@{host}/ok/0"), "--mode", "batch",
                             "--levels", "1", "--requests-per-level", "1", "--output-len", "2", "--no-metrics",
                             "--results-dir", str(tmp_path))
    assert code == 0, err
    run_dir = results_dir_from(out)
    assert CANARY not in _everything_written(run_dir)
    assert json.loads((run_dir / "run.json").read_text())["endpoint"]["baseUrl"].startswith("http://bench:<redacted>@")


def test_a_server_echoing_the_key_in_its_error_is_scrubbed():
    import asyncio

    from loadtest.clock import Clock
    from loadtest.protocols import Prompt, make_dialect
    from loadtest.records import RequestRecord
    from loadtest.runner import Runner

    class EchoTransport:
        """A server that answers 400 with the request's headers in the body."""

        class _Resp:
            status = 400

            def __init__(self, headers):
                self.headers = headers

            async def read(self, n):
                return json.dumps({"error": "bad", "headers": self.headers}).encode()[:n]

        def stream(self, url, payload, headers):
            import contextlib

            @contextlib.asynccontextmanager
            async def cm():
                yield self._Resp(headers)
            return cm()

    runner = Runner("http://127.0.0.1:1", make_dialect("openai", "m"), EchoTransport(), None, Clock(),
                    api_key=CANARY, headers={"X-Other": "second-secret-value"})
    rec = asyncio.run(runner.send(RequestRecord(stage="0", i=0, scheduled=0.0, warmup=False), Prompt("hi", 1, 2)))
    assert rec.status == 400 and rec.errorDetail
    assert CANARY not in rec.errorDetail and "second-secret-value" not in rec.errorDetail
    assert "<redacted>" in rec.errorDetail

"""LoRA adapters (``server.lora``): validation with key and fix, the memory they take from the KV cache
(by hand), vLLM's flags, and what the simulated server and the performance model do with them."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from components.servers.base import ServerArgs
from components.servers.tgi import args as tgi_args
from components.servers.vllm import args
from loadtest.simulator.app import SimulatedEndpoint
from loadtest.simulator.engine import Engine, Sequence
from loadtest.simulator.perf_model import PerfModel
from stacks.errors import SpecErrors
from stacks.loader import load_stack_file, spec_from_config, stack_files
from stacks.lora import params_per_rank
from tests.stack_configs import BASE, merge

SQL = {"name": "sql", "source": "yard1/llama-2-7b-sql-lora-test"}
TGI_SQL = {"name": "yard1/llama-2-7b-sql-lora-test", "source": "yard1/llama-2-7b-sql-lora-test"}  # TGI: the repo id


def spec(lora: dict | None, **server):
    return spec_from_config(merge(BASE, {"gke-llm-bench:server": {"lora": lora, **server}}), "t")


def errors(lora: dict, **server) -> list[str]:
    with pytest.raises(SpecErrors) as info:
        spec(lora, **server)
    return [f"{e.key}: {e.message} | {e.fix}" for e in info.value.errors]


def test_the_adapters_memory_is_taken_before_the_kv_cache():
    base, lora = spec(None), spec({"adapters": [SQL, {"name": "chat", "source": "org/chat-lora"}], "maxRank": 16})
    # by hand, Llama-2-7B: per layer q/o (4096 + 4096) x 2, k/v (4096 + 4096) x 2, gate/up (4096 + 11008) x 2,
    # down (11008 + 4096) = 78,080 parameters per unit of rank; x 32 layers = 2,498,560
    assert params_per_rank(lora.model) == 2_498_560
    # two slots (maxLoras defaults to every adapter) at rank 16, 2 bytes each
    assert lora.sizing.lora_bytes == 2 * 16 * 2_498_560 * 2
    assert base.sizing.kv_bytes - lora.sizing.kv_bytes == pytest.approx(lora.sizing.lora_bytes)
    assert lora.lora.max_loras == 2 and lora.lora.names == ("sql", "chat")


def test_vllm_is_started_with_the_adapters():
    a = args(ServerArgs.from_spec(spec({"adapters": [SQL], "maxRank": 32, "maxLoras": 1})))
    i = a.index("--enable-lora")
    assert a[i:i + 7] == ["--enable-lora", "--lora-modules", "sql=yard1/llama-2-7b-sql-lora-test",
                          "--max-lora-rank", "32", "--max-loras", "1"]
    assert "--enable-lora" not in args(ServerArgs.from_spec(spec(None)))


@pytest.mark.parametrize("lora, server, key, fix", [
    ({"adapters": [SQL]}, {"kind": "triton-trtllm"}, "server.lora", "vllm or tgi"),
    ({"adapters": [SQL]}, {"kind": "tgi"}, "adapters[0].name", "name it yard1/llama-2-7b-sql-lora-test"),
    ({"adapters": [TGI_SQL, {"name": "c", "source": "/a/c"}], "maxLoras": 1}, {"kind": "tgi"}, "server.lora.maxLoras",
     "drop maxLoras"),
    ({"adapters": []}, {}, "server.lora.adapters", "at least one"),
    ({"adapters": [SQL, SQL]}, {}, "adapters[1].name", "its own name"),
    ({"adapters": [{"name": "base", "source": "x/y"}]}, {}, "adapters[0].name", "what it does"),
    ({"adapters": [{"name": "bad name", "source": "x/y"}]}, {}, "adapters[0].name", "letters"),
    ({"adapters": [{"name": "a", "source": " "}]}, {}, "adapters[0].source", "repo id"),
    ({"adapters": [SQL], "maxRank": 12}, {}, "server.lora.maxRank", "16"),
    ({"adapters": [SQL], "maxLoras": 3}, {}, "server.lora.maxLoras", "at most 1"),
])
def test_bad_lora_config_names_the_key_and_the_fix(lora, server, key, fix):
    found = errors(lora, **server)
    assert any(key in e and fix in e for e in found), found


def test_tgi_loads_every_adapter_at_startup():
    local = {"name": "chat", "source": "/data/adapters/chat"}
    s = spec({"adapters": [TGI_SQL, local]}, kind="tgi")
    a = tgi_args(ServerArgs.from_spec(s))
    # a Hub adapter by its repo id, a local one as name=path (TGI's LORA_ADAPTERS grammar)
    assert a[a.index("--lora-adapters") + 1] == "yard1/llama-2-7b-sql-lora-test,chat=/data/adapters/chat"
    assert s.lora is not None and s.lora.max_loras == 2  # all resident
    assert "--lora-adapters" not in tgi_args(ServerArgs.from_spec(spec(None, kind="tgi")))


def test_the_committed_lora_stack_is_valid():
    s = load_stack_file(stack_files()["llama2-7b-lora-g2"])
    assert s.server.name == "vllm" and s.lora is not None and s.lora.names == ("sql",)
    assert s.summary()["server"]["lora"]["adapters"] == [SQL]


def test_adapted_tokens_cost_flops_and_adapter_reads():
    s = spec({"adapters": [SQL], "maxRank": 16})
    perf = PerfModel(s)
    plain = perf.step_seconds(4096, 8, 4096 * 512, 0)
    adapted = perf.step_seconds(4096, 8, 4096 * 512, 0, lora_tokens=4096, lora_adapters=1)
    extra_flops = 2 * 16 * 2_498_560 * 4096
    assert adapted - plain == pytest.approx(extra_flops / perf.flops_per_s, rel=1e-6)  # a compute-bound prefill
    assert perf.step_seconds(8, 8, 8 * 512, 8 * 512) <= perf.step_seconds(8, 8, 8 * 512, 8 * 512, 8, 1)


def test_max_loras_keeps_a_second_adapter_out_of_the_batch():
    """vLLM --max-loras 1: a request for another adapter waits, and the next one that fits is admitted."""
    s = spec({"adapters": [SQL, {"name": "chat", "source": "org/chat-lora"}], "maxLoras": 1})
    engine = Engine(s)
    seqs = [Sequence(rid=0, prompt_len=8, max_new=4, arrival=0.0, adapter="sql"),
            Sequence(rid=1, prompt_len=8, max_new=4, arrival=0.0, adapter="chat"),
            Sequence(rid=2, prompt_len=8, max_new=4, arrival=0.0, adapter=None),
            Sequence(rid=3, prompt_len=8, max_new=4, arrival=0.0, adapter="sql")]
    for seq in seqs:
        engine.add(seq)
    first = engine.step(0.1)
    assert first is not None
    assert {q.rid for q in engine.running} == {0, 2, 3}  # the chat request waits; its place is kept
    assert [q.rid for q in engine.waiting] == [1]
    while engine.has_work:
        engine.step()
    assert all(q.finished_at is not None for q in seqs)


def test_the_simulated_server_answers_as_each_adapter():
    s = spec({"adapters": [SQL]})

    async def go():
        async with SimulatedEndpoint(s, port=0) as ep, aiohttp.ClientSession() as http:
            async with http.get(ep.url + "/v1/models") as r:
                models = (await r.json())["data"]
            async with http.post(ep.url + "/v1/completions",
                                 json={"model": "sql", "prompt": "a b", "max_tokens": 3}) as r:
                done = await r.json()
            async with http.post(ep.url + "/v1/completions",
                                 json={"model": "sql2", "prompt": "a b", "max_tokens": 3}) as r:
                unknown = r.status
            return models, done, unknown

    models, done, unknown = asyncio.run(go())
    assert [m["id"] for m in models] == [s.served_name, "sql"]
    assert models[1]["parent"] == s.served_name and models[1]["root"] == SQL["source"]
    assert done["model"] == "sql" and done["usage"]["completion_tokens"] == 3
    assert unknown == 404


def test_the_simulated_tgi_answers_an_unknown_adapter_from_the_base_model():
    s = spec({"adapters": [TGI_SQL]}, kind="tgi")

    async def go():
        async with SimulatedEndpoint(s, port=0) as ep, aiohttp.ClientSession() as http:
            statuses = []
            for adapter in (TGI_SQL["name"], "not-loaded"):
                body = {"inputs": "a b", "parameters": {"max_new_tokens": 3, "adapter_id": adapter}}
                async with http.post(ep.url + "/generate", json=body) as r:
                    statuses.append((r.status, (await r.json())["generated_text"] != ""))
            return statuses

    assert asyncio.run(go()) == [(200, True), (200, True)]  # TGI does not refuse it (its issue 2505)

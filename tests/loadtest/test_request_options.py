"""Options that shape the requests: arrivals (gamma, normalised, ramp-up, a concurrency cap),
sampling left to the server unless asked, ``--extra-body``, ``--header``, and the framers' limits."""

from __future__ import annotations

import itertools
import json

import pytest

from loadtest.errors import BadInput
from loadtest.protocols import Prompt, Sampling, make_dialect
from loadtest.protocols.framing import JSONSeqFramer, ProtocolError, SSEFramer
from loadtest.schedule import arrival_offsets

from .conftest import endpoint_args, load_run, results_dir_from, run_cli, written_files

PROMPT = Prompt("hello there", 3, 8)


def test_normalized_arrivals_span_exactly_n_over_r():
    offsets = list(itertools.islice(arrival_offsets(4.0, "poisson", 7, normalize_to=20), 21))
    assert offsets[20] == pytest.approx(20 / 4.0)  # the 20 gaps add up to N / R
    raw = list(itertools.islice(arrival_offsets(4.0, "poisson", 7), 21))
    assert raw[20] != pytest.approx(5.0)
    # the same draws, only scaled: the order of arrivals is kept
    assert all(b / a == pytest.approx(offsets[5] / raw[5]) for a, b in zip(raw[1:20], offsets[1:20], strict=True))


def test_gamma_arrivals_keep_the_mean_and_burstiness_widens_the_gaps():
    def gaps(shape: float) -> list[float]:
        xs = list(itertools.islice(arrival_offsets(10.0, "gamma", 1, burstiness=shape), 20001))
        return [b - a for a, b in itertools.pairwise(xs)]

    for shape in (0.25, 1.0, 4.0):
        g = gaps(shape)
        assert sum(g) / len(g) == pytest.approx(0.1, rel=0.05)
    cv = {s: (sum((x - 0.1) ** 2 for x in gaps(s)) / 20000) ** 0.5 / 0.1 for s in (0.25, 4.0)}
    assert cv[0.25] == pytest.approx(2.0, rel=0.1) and cv[4.0] == pytest.approx(0.5, rel=0.1)  # 1 / sqrt(shape)


def test_ramp_up_rises_linearly_then_holds_the_rate():
    offsets = list(itertools.islice(arrival_offsets(10.0, "constant", 0, ramp_up=4.0), 60))
    # by t the ramp has sent R t^2 / 2S requests: 5 by 2 s, 20 by 4 s, then 10 per second
    assert offsets[5] == pytest.approx(2.0) and offsets[20] == pytest.approx(4.0)
    assert offsets[30] == pytest.approx(5.0) and offsets[50] == pytest.approx(7.0)


def test_max_concurrency_caps_requests_in_flight(capsys, tmp_path, fixture_url):
    code, out, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/slow/10"), "--mode", "rate",
                             "--levels", "100", "--requests-per-level", "12", "--max-concurrency", "2",
                             "--output-len", "4", "--results-dir", str(tmp_path))
    assert code == 0, err
    _, records = load_run(results_dir_from(out))
    assert len(records) == 12 and all(r["error"] is None for r in records)
    events = sorted([(r["sent"], 1) for r in records] + [(r["end"], -1) for r in records], key=lambda e: (e[0], e[1]))
    in_flight = list(itertools.accumulate(d for _, d in events))
    assert max(in_flight) == 2


def test_sampling_is_the_servers_unless_asked():
    for name in ("openai", "tgi", "triton"):
        _, body = make_dialect(name, "m").request(PROMPT)
        flat = json.dumps(body)
        assert "temperature" not in flat and "top_p" not in flat, name
    _, oa = make_dialect("openai", "m", sampling=Sampling(temperature=0.7, top_k=5, seed=3)).request(PROMPT)
    assert (oa["temperature"], oa["top_k"], oa["seed"]) == (0.7, 5, 3)
    _, tgi = make_dialect("tgi", "m", sampling=Sampling(temperature=0.7)).request(PROMPT)
    assert tgi["parameters"]["temperature"] == 0.7 and tgi["parameters"]["do_sample"] is True
    _, tr = make_dialect("triton", "m", sampling=Sampling(top_p=0.9, seed=11)).request(PROMPT)
    assert (tr["top_p"], tr["random_seed"]) == (0.9, 11)
    with pytest.raises(BadInput, match="JetStream"):
        make_dialect("jetstream", "m", sampling=Sampling(temperature=0.5))


def test_extra_body_is_merged_last():
    d = make_dialect("tgi", "m", extra_body={"parameters": {"repetition_penalty": 1.1}, "stream": True})
    _, body = d.request(PROMPT)
    assert body["parameters"]["repetition_penalty"] == 1.1 and body["parameters"]["max_new_tokens"] == 8


def test_run_json_records_sampling_and_only_header_names(capsys, tmp_path, fixture_url):
    code, out, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/1"), "--mode", "batch", "--levels",
                             "2", "--requests-per-level", "2", "--output-len", "2", "--temperature", "0.5",
                             "--extra-body", '{"repetition_penalty": 1.05}', "--header", "X-Token:canary-0451",
                             "--results-dir", str(tmp_path))
    assert code == 0, err
    run_dir = results_dir_from(out)
    config = json.loads((run_dir / "run.json").read_text())["config"]
    assert config["sampling"] == {"temperature": 0.5} and config["extraBody"] == {"repetition_penalty": 1.05}
    assert config["headers"] == {"X-Token": "<redacted>"}
    assert not any("canary-0451" in text for text in written_files(run_dir).values())


@pytest.mark.parametrize(("flag", "value", "fix"), [
    ("--extra-body", "[1, 2]", "JSON object"),
    ("--extra-body", "{not json", "valid JSON"),
    ("--header", "no-colon-here", "NAME:VALUE"),
    ("--burstiness", "0.5", "--arrival gamma"),
    ("--warmup", "5", "--normalize-arrivals"),
])
def test_bad_request_options_name_the_flag(capsys, tmp_path, fixture_url, flag, value, fix):
    extra = ["--normalize-arrivals"] if flag == "--warmup" else []
    code, _, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/1"), "--mode", "rate", "--levels", "1",
                           flag, value, *extra, "--results-dir", str(tmp_path))
    assert code == 2 and flag in err and fix in err


def test_a_huge_sse_event_fails_the_request_not_the_loop():
    framer = SSEFramer(max_event_bytes=1 << 20)
    piece = b"data: " + b"x" * 65536
    with pytest.raises(ProtocolError) as info:
        for _ in range(32):  # 2 MiB of one event, in reads as a socket delivers them
            framer.feed(piece)
    assert info.value.kind == "event_too_large"
    big = JSONSeqFramer(max_event_bytes=1 << 20)
    with pytest.raises(ProtocolError, match="exceeded"):
        for _ in range(32):
            big.feed(b'{"text": "' + b"y" * 65536)


def test_sse_framer_joins_an_event_split_across_many_reads_once():
    framer = SSEFramer()
    event = b'data: {"a": "' + b"z" * 100000 + b'"}\n\n'
    out: list[str] = []
    for k in range(0, len(event), 1000):
        out += framer.feed(event[k:k + 1000])
    assert len(out) == 1 and json.loads(out[0])["a"] == "z" * 100000
    # a boundary split between two reads, and CRLF line ends
    assert framer.feed(b"data: 1\r\n") == [] and framer.feed(b"\r\ndata: 2\n") == ["1"]
    assert framer.feed(b"\n") == ["2"]


def test_tokenize_is_retried_through_dropped_connections(capsys, tmp_path, fixture_url):
    code, out, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/flaky/3"), "--mode", "batch", "--levels",
                             "2", "--requests-per-level", "2", "--output-len", "2", "--input-len", "12",
                             "--results-dir", str(tmp_path))
    assert code == 0, err
    _, records = load_run(results_dir_from(out))
    assert all(r["inputTokensExpected"] == 12 and not r.get("inputTokensEstimated") for r in records)


def test_a_setup_call_that_keeps_failing_is_one_line_and_exit_3(capsys, tmp_path, fixture_url):
    code, _, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/down/0"), "--mode", "batch", "--levels",
                           "1", "--requests-per-level", "1", "--setup-timeout", "0.5", "--results-dir", str(tmp_path))
    assert code == 3
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines[0].startswith("error: POST /tokenize failed") and "HTTP 503" in lines[0]
    assert "Traceback" not in err


def test_without_a_token_counter_input_tokens_are_estimates_not_zero(capsys, tmp_path, fixture_url):
    code, out, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/1", dialect="triton"), "--mode",
                             "batch", "--levels", "2", "--requests-per-level", "2", "--output-len", "2",
                             "--input-len", "20", "--results-dir", str(tmp_path))
    assert code == 0, err
    summary, records = load_run(results_dir_from(out))
    assert all(r["inputTokens"] == 20 and r["inputTokensEstimated"] is True for r in records)
    assert summary["stages"][0]["inputTokensPerS"] > 0


def _word_tokenizer(tmp_path):
    """A tokenizer.json made here (no download): one token per vocabulary word, unknown words one
    [UNK] each, and a BOS added to every prompt as Llama's tokenizer does."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    from loadtest.workloads import WORDS

    vocab = {"[UNK]": 0, "<s>": 1, **{w: i + 2 for i, w in enumerate(sorted(set(WORDS)))}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    folder = tmp_path / "tokenizer"
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    return folder


def test_a_local_tokenizer_gives_exact_input_lengths_where_the_server_has_no_counter(capsys, tmp_path, fixture_url):
    from loadtest.local_tokenizer import load_local_tokenizer

    folder = _word_tokenizer(tmp_path)
    count = load_local_tokenizer(str(folder))
    import asyncio

    assert asyncio.run(count(["the of", "hello"])) == [3, 2]  # BOS + words; an unknown word is one token
    code, out, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/1", dialect="triton"), "--mode",
                             "batch", "--levels", "2", "--requests-per-level", "2", "--output-len", "2",
                             "--input-len", "20", "--tokenizer", str(folder), "--results-dir", str(tmp_path / "r"))
    assert code == 0, err
    summary, records = load_run(results_dir_from(out))
    assert summary["workload"]["exactInputTokens"] is True and summary["workload"]["tokenizer"] == str(folder)
    assert all(r["inputTokens"] == 20 and not r["inputTokensEstimated"] for r in records)
    assert summary["stages"][0]["inputTokensPerS"] > 0


def test_a_server_with_its_own_counter_keeps_it_over_a_local_tokenizer(capsys, tmp_path, fixture_url):
    folder = _word_tokenizer(tmp_path)
    code, out, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/tokenize/0"), "--mode", "batch",
                             "--levels", "1", "--requests-per-level", "1", "--output-len", "2", "--tokenizer",
                             str(folder), "--results-dir", str(tmp_path / "r"))
    assert code == 0, err
    summary, _ = load_run(results_dir_from(out))
    assert summary["workload"]["tokenizer"] == "server"
    assert any("--tokenizer" in w and "counts tokens itself" in w for w in summary["warnings"])


@pytest.mark.parametrize("make", ["missing", "not-a-tokenizer"])
def test_a_bad_tokenizer_path_is_refused_before_anything_is_sent(make, capsys, tmp_path, fixture_url):
    path = tmp_path / "tok"
    if make == "not-a-tokenizer":
        path.mkdir()
        (path / "tokenizer.json").write_text('{"not": "a tokenizer"}')
    code, _, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/1", dialect="triton"), "--mode",
                           "batch", "--levels", "1", "--requests-per-level", "1", "--tokenizer", str(path),
                           "--results-dir", str(tmp_path / "r"))
    assert code == 2
    assert "--tokenizer" in err and "Traceback" not in err

"""Dialect parsers and framers on hand-written wire data (the formats each server documents)."""

from __future__ import annotations

import json

import pytest

from loadtest.errors import BadInput
from loadtest.protocols import Prompt, ProtocolError, make_dialect
from loadtest.protocols.framing import JSONSeqFramer, SSEFramer

P = Prompt("hello world", 2, 3)


def feed_all(dialect_name: str, raw: bytes, api: str = "completions", split: int = 7):
    d = make_dialect(dialect_name, "m", api)
    parser, framer = d.parser(P), d.framer()
    counts = []
    for k in range(0, len(raw), split):  # arbitrary chunk boundaries, as TCP delivers them
        counts += [parser.feed(e) for e in framer.feed(raw[k:k + split])]
    counts += [parser.feed(e) for e in framer.close()]
    parser.finish()
    return parser, counts


def sse(*objs) -> bytes:
    return b"".join(b"data: " + (o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n\n" for o in objs)


def test_sse_framer_joins_multiline_data_and_ignores_comments():
    f = SSEFramer()
    assert f.feed(b": keepalive\n\nevent: x\ndata: a\r\ndata: b\r\n\r\ndata: c") == ["a\nb"]
    assert f.close() == ["c"]


@pytest.mark.parametrize("read", [
    b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n',  # vLLM
    b'data:{"a":1}\n\ndata:{"t":"data: x"}\n\n',  # TGI's router (no space), "data: " inside a payload
    b'data: {"a":1}\n\ndata:{"b":2}\n\n',  # the two spellings mixed
    b'data:  {"a":1}\n\ndata: \n\n',  # a second space is the value's; an empty payload
    b': keepalive\n\ndata: {"a":1}\n\n',  # a comment
    b'event: x\ndata: {"a":1}\n\n',  # another field
    b'data: a\ndata: b\n\ndata: c\n\n',  # multi-line data
    b'data: {"t":"\xff"}\n\n',  # not UTF-8
])
def test_sse_whole_read_shortcut_agrees_with_the_line_parser(read: bytes):
    """A read of whole events takes a one-split shortcut when it is only one-line data events; it
    must give exactly what the general line-by-line path gives, and decline every other shape."""
    assert SSEFramer().feed(read) == SSEFramer()._lines(read)


def test_openai_completions_counts_chunks_and_takes_usage():
    raw = sse({"choices": [{"text": "a"}]}, {"choices": [{"text": ""}]}, {"choices": [{"text": "c"}]},
              {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 3}}, b"[DONE]")
    p, counts = feed_all("openai", raw)
    assert counts == [1, 1, 1, 0, 0]  # an empty-text chunk is still a token (vLLM: partial character)
    assert (p.input_tokens, p.output_tokens, p.token_source) == (2, 3, "usage")


def test_openai_token_ids_give_tokens_per_chunk():
    raw = sse({"choices": [{"text": "ab", "token_ids": [5, 6]}]}, {"choices": [{"text": "c", "token_ids": [7]}]},
              {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 3}}, b"[DONE]")
    p, counts = feed_all("openai", raw)
    assert counts == [2, 1, 0, 0] and p.chunk_tokens == p.output_tokens == 3


def test_openai_chat_role_chunk_is_not_content():
    raw = sse({"choices": [{"delta": {"role": "assistant", "content": ""}}]},
              {"choices": [{"delta": {"content": "x"}}]}, {"choices": [{"delta": {}, "finish_reason": "length"}]},
              b"[DONE]")
    _, counts = feed_all("openai", raw, api="chat")
    assert counts == [0, 1, 0, 0]


@pytest.mark.parametrize("api, objs", [
    ("completions", [{"choices": [{"text": "a"}]}, {"choices": [{"text": None}]}, {"choices": [{"text": ""}]},
                     {"choices": [{"text": "b"}], "usage": None},
                     {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 3}}]),
    ("completions", [{"choices": [{"text": "ab", "token_ids": [5, 6]}, {"index": 1, "text": "c"}]},
                     {"choices": [{"text": "d", "token_ids": [7]}]}]),
    ("chat", [{"choices": [{"delta": {"role": "assistant", "content": ""}}]},
              {"choices": [{"delta": {"content": "x"}}]},
              {"choices": [{"delta": {"content": "", "role": "assistant"}, "token_ids": [3]}]},
              {"choices": [{"delta": {}, "finish_reason": "length"}]}]),
])
def test_openai_one_read_counts_what_event_by_event_counts(api: str, objs: list):
    """All of a stream in one read (``feed_many``, one parse) and one event at a time agree."""
    raw = sse(*objs, b"[DONE]")
    whole = make_dialect("openai", "m", api).parser(P)
    n = whole.feed_many(SSEFramer().feed(raw))
    single, counts = feed_all("openai", raw, api=api)
    assert n == sum(counts) == whole.chunk_tokens == single.chunk_tokens
    assert (whole.output_tokens, whole.input_tokens, whole.done) == (single.output_tokens, single.input_tokens, True)


def test_openai_bad_event_in_a_read_keeps_the_tokens_before_it():
    parser = make_dialect("openai", "m").parser(P)
    events = SSEFramer().feed(sse({"choices": [{"text": "a"}]}, {"choices": [{"text": "b"}]}, b"[1]",
                                  {"choices": [{"text": "c"}]}))
    with pytest.raises(ProtocolError) as e:
        parser.feed_many(events)
    assert e.value.kind == "invalid_json" and parser.chunk_tokens == 2


def test_openai_done_marker_padded_or_not_last():
    parser = make_dialect("openai", "m").parser(P)
    assert parser.feed_many([json.dumps({"choices": [{"text": "a"}]}), " [DONE] "]) == 1 and parser.done
    parser = make_dialect("openai", "m").parser(P)
    assert parser.feed_many(["[DONE]", json.dumps({"choices": [{"text": "a"}]})]) == 1 and parser.done


def test_openai_missing_done_is_truncated():
    d = make_dialect("openai", "m")
    parser = d.parser(P)
    parser.feed(json.dumps({"choices": [{"text": "a"}]}))
    with pytest.raises(ProtocolError) as e:
        parser.finish()
    assert e.value.kind == "truncated"


def test_openai_request_asks_for_usage_and_exact_length():
    path, body = make_dialect("openai", "m").request(P)
    assert path == "/v1/completions"
    assert body["stream_options"] == {"include_usage": True}
    assert body["ignore_eos"] is True and body["max_tokens"] == 3 == body["min_tokens"]
    assert body["return_token_ids"] is True
    path, body = make_dialect("openai", "m", "chat").request(P)
    assert path == "/v1/chat/completions" and body["messages"][0]["content"] == "hello world"


def test_tgi_details_are_the_end_marker_and_the_count():
    ev = [{"index": k, "token": {"id": k, "text": "t", "logprob": 0, "special": False}, "generated_text": None,
           "details": None} for k in (1, 2)]
    ev.append({"index": 3, "token": {"id": 3, "text": "t", "logprob": 0, "special": False}, "generated_text": "ttt",
               "details": {"finish_reason": "length", "generated_tokens": 3, "seed": None, "input_length": 2}})
    raw = b"".join(b"data:" + json.dumps(e).encode() + b"\n\n" for e in ev)
    p, counts = feed_all("tgi", raw)
    assert counts == [1, 1, 1] and (p.output_tokens, p.input_tokens, p.token_source) == (3, 2, "details")
    path, body = make_dialect("tgi", "m").request(P)
    assert path == "/generate_stream" and body["parameters"]["max_new_tokens"] == 3
    assert body["parameters"]["details"] is True


def test_tgi_error_event_is_server_error():
    with pytest.raises(ProtocolError) as e:
        feed_all("tgi", b'data:{"error":"oom","error_type":"generation"}\n\n')
    assert e.value.kind == "server_error"


def test_triton_counts_events_and_short_streams_are_truncated():
    ev = {"model_name": "ensemble", "model_version": "1", "text_output": "x"}
    p, counts = feed_all("triton", sse(ev, ev, ev))
    assert counts == [1, 1, 1] and p.token_source == "chunks"
    with pytest.raises(ProtocolError) as e:
        feed_all("triton", sse(ev, ev))
    assert e.value.kind == "truncated"
    path, body = make_dialect("triton", "ensemble").request(P)
    assert path == "/v2/models/ensemble/generate_stream"
    assert body["text_input"] == "hello world" and body["max_tokens"] == 3 == body["min_length"]


def test_jetstream_concatenated_pretty_json():
    objs = b"".join(json.dumps({"id": "g", "time_created": 1.0, "text": t}, indent=4).encode() for t in "abc")
    _, counts = feed_all("jetstream", objs, split=5)
    assert counts == [1, 1, 1]
    f = JSONSeqFramer()
    f.feed(b'{"text": "a"}{"te')
    with pytest.raises(ProtocolError) as e:
        f.close()
    assert e.value.kind == "truncated"
    path, body = make_dialect("jetstream", "m").request(P)
    assert path == "/generate" and body == {"prompt": "hello world", "max_tokens": 3, "stream": True}


def test_invalid_json_event():
    with pytest.raises(ProtocolError) as e:
        feed_all("openai", b"data: {nope\n\n")
    assert e.value.kind == "invalid_json"


def test_unknown_dialect_and_api_are_bad_input():
    with pytest.raises(BadInput, match="--dialect"):
        make_dialect("grpc", "m")
    with pytest.raises(BadInput, match="--api chat"):
        make_dialect("triton", "m", "chat")

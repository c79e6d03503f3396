"""How much the stream framers cost the load tester per socket read, and that they stay linear.

Typical: one OpenAI completions token event per read (what a streaming server writes), whole events
of several tokens per read, and an event split across two reads; and a whole 64-token answer in one
read, framed and counted by the OpenAI parser (what the generator-capacity harness sends, and what a
short answer from a fast server looks like). Pathological: one 3.9 MiB event
arriving in 64 KiB reads (the framer must join it once, not rescan it per read) and one 8 MiB event
(refused as ``event_too_large`` as soon as it passes the 4 MiB cap, without stalling).

    .venv/bin/python benchmarks/sse_framer.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtest.protocols import Prompt, make_dialect
from loadtest.protocols.framing import MAX_EVENT_BYTES, ProtocolError, SSEFramer

EVENT = b"data: " + json.dumps({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
                                "choices": [{"index": 0, "text": " t", "logprobs": None, "finish_reason": None,
                                             "token_ids": [5]}]}).encode() + b"\n\n"


def per_read_us(reads: list[bytes], rounds: int = 2000) -> float:
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(rounds):
            framer = SSEFramer()
            for r in reads:
                framer.feed(r)
        best = min(best, time.perf_counter() - t)
    return best / (rounds * len(reads)) * 1e6


def whole_answer_us(rounds: int = 3000) -> float:
    """One 64-token answer (64 token events, a usage chunk, ``[DONE]``) arriving in one read: framed
    and counted, per request."""
    dialect = make_dialect("openai", "m")
    usage = {"choices": [], "usage": {"prompt_tokens": 128, "completion_tokens": 64, "total_tokens": 192}}
    body = EVENT * 64 + b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n"
    prompt = Prompt("x", 128, 64)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(rounds):
            parser = dialect.parser(prompt)
            assert parser.feed_many(dialect.framer().feed(body)) == 64
        best = min(best, time.perf_counter() - t)
    return best / rounds * 1e6


def big_event_ms(size: int) -> tuple[float, str]:
    body = b"data: " + b"x" * size + b"\n\n"
    framer = SSEFramer()
    t = time.perf_counter()
    outcome = "joined"
    try:
        for k in range(0, len(body), 65536):
            framer.feed(body[k:k + 65536])
    except ProtocolError as exc:
        outcome = exc.kind
    return (time.perf_counter() - t) * 1e3, outcome


def main() -> None:
    print(f"one token event per read:       {per_read_us([EVENT] * 64):.2f} us per read")
    print(f"three events per read:          {per_read_us([EVENT * 3] * 64):.2f} us per read")
    print(f"an event split over two reads:  {per_read_us([EVENT[:50], EVENT[50:]] * 32):.2f} us per read")
    print(f"a 64-token answer in one read:  {whole_answer_us():.1f} us per request (framed and counted)")
    for size in (MAX_EVENT_BYTES - 64 * 1024, 2 * MAX_EVENT_BYTES):
        ms, outcome = big_event_ms(size)
        print(f"one {size / 2**20:.1f} MiB event in 64 KiB reads: {ms:.1f} ms ({outcome})")


if __name__ == "__main__":
    main()

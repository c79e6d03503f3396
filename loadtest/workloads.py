"""Prompts: synthetic (fixed or distributed lengths), shared-prefix synthetic, or a ShareGPT file.

No tokenizer is downloaded, ever. When the server offers vLLM's ``/tokenize``, synthetic prompts
are trimmed to the exact requested input token count and dataset lengths are measured exactly;
otherwise lengths are estimated (one token per synthetic word, four characters per token for
datasets) and the true input count is taken from the server's usage and recorded per request.
Everything is drawn from ``random.Random(seed)``: the same seed gives the same prompts.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import LoadConfig
from .errors import BadInput
from .protocols import Prompt

# Common short English words: mostly one token each for BPE vocabularies, so "N words" ~ "N tokens".
_WORDS_TEXT = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have "
    "an they you were her she there been one all we their has would when if so no what up out about into "
    "them can only other new some could time these two may then do first any my now such like our over "
    "man me even most made after also did many before must through back years where much your way well "
    "down should because each just those people how too little state good very make world still own see "
    "men work long get here between both life being under never day same another know while last might us "
    "great old year off come since against go came right used take three"
)
WORDS = tuple(_WORDS_TEXT.split())

Tokenizer = Callable[[list[str]], Awaitable[list[int]]]


@dataclass
class Workload:
    """An endless, seeded source of prompts plus what is known about their lengths."""

    prompts: list[Prompt]
    exact_input: bool
    source: str
    inexact: int = 0  # prompts whose measured input length differs from the target
    tokenizer: str | None = None  # what counted the input tokens: "server", a --tokenizer path, or None (estimates)

    def __post_init__(self) -> None:
        if not self.prompts:
            raise BadInput("the workload has no prompts", "check --dataset filters and lengths")
        self._next = 0

    def peek(self, ahead: int) -> Prompt:
        """The prompt ``ahead`` places after the next one: a stage's request g gets ``peek(g)``,
        whichever process or pod sends it, so every share of a stage agrees on it."""
        return self.prompts[(self._next + ahead) % len(self.prompts)]

    def rotated(self) -> list[Prompt]:
        """The prompts in the order ``peek`` hands them out from now on (for worker processes)."""
        k = self._next % len(self.prompts)
        return self.prompts[k:] + self.prompts[:k]

    def advance(self, n: int) -> None:
        """Count ``n`` prompts as taken elsewhere (by worker processes)."""
        self._next += n

    @property
    def reused(self) -> int:
        """Requests that got a prompt already used (the pool wrapped around)."""
        return max(0, self._next - len(self.prompts))

    def describe(self) -> dict[str, Any]:
        ins = [p.input_tokens for p in self.prompts if p.input_tokens is not None]
        outs = [p.output_len for p in self.prompts]
        return {
            "source": self.source, "prompts": len(self.prompts), "exactInputTokens": self.exact_input,
            "inexactPrompts": self.inexact,
            "meanInputTokens": round(sum(ins) / len(ins), 2) if ins else None,
            "meanOutputTokens": round(sum(outs) / len(outs), 2), "reused": self.reused, "tokenizer": self.tokenizer,
        }


def _draw(rng: random.Random, lo: int, hi: int) -> int:
    return lo if lo == hi else rng.randint(lo, hi)


def _words(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(WORDS) for _ in range(n)]


async def synthetic(cfg: LoadConfig, count: int, tokenize: Tokenizer | None) -> Workload:
    """``count`` distinct prompts; a shared prefix per group when ``cfg.prefix_len`` > 0.

    Each prompt starts with a unique serial number so no two share a cached prefix unless the
    shared-prefix workload asks for it.
    """
    rng = random.Random(cfg.seed)
    prefixes = [" ".join(_words(rng, cfg.prefix_len)) for _ in range(cfg.prefix_groups)] if cfg.prefix_len else []
    texts: list[str] = []
    targets: list[int] = []
    outs: list[int] = []
    for i in range(count):
        n_in = _draw(rng, cfg.input_len.lo, cfg.input_len.hi)
        outs.append(_draw(rng, cfg.output_len.lo, cfg.output_len.hi))
        suffix_len = max(1, n_in - cfg.prefix_len) if prefixes else n_in
        body = f"{i} " + " ".join(_words(rng, suffix_len))
        texts.append(f"{prefixes[i % len(prefixes)]} {body}" if prefixes else body)
        targets.append(n_in)
    source = f"synthetic(in={cfg.input_len}, out={cfg.output_len}" + (
        f", prefix={cfg.prefix_len}x{cfg.prefix_groups})" if prefixes else ")")
    if tokenize is None:
        return Workload([Prompt(t, None, o, n) for t, o, n in zip(texts, outs, targets, strict=True)], False, source)
    exact = await _fit_lengths(texts, targets, tokenize)
    prompts = [Prompt(t, n, o) for (t, n), o in zip(exact, outs, strict=True)]
    off = sum(1 for (_, n), want in zip(exact, targets, strict=True) if n != want)
    workload = Workload(prompts, off == 0, source)
    workload.inexact = off
    return workload


async def _fit_lengths(texts: list[str], targets: list[int], tokenize: Tokenizer) -> list[tuple[str, int]]:
    """Trim or pad each text, word by word, until the server's tokenizer counts exactly the target.

    The cost in tokens of each vocabulary word is measured once (``"a w"`` minus ``"a"``: BPE
    tokenizers split at spaces, so costs add up); a prompt over its target loses words from the end
    worth at least the excess, then single-token words pad it back. Every round is verified with
    the real tokenizer; two or three rounds suffice. Prompts that cannot be fitted (a tokenizer
    without single-token words) keep their measured count and are reported.
    """
    base = (await tokenize(["a"]))[0]
    costs = await tokenize([f"a {w}" for w in WORDS])
    cost = {w: max(1, c - base) for w, c in zip(WORDS, costs, strict=True)}
    ones = [w for w in WORDS if cost[w] == 1] or [min(WORDS, key=lambda w: cost[w])]
    rng = random.Random(0)
    words = [t.split(" ") for t in texts]
    counts = await tokenize(texts)
    for _ in range(6):
        todo = [i for i, (c, want) in enumerate(zip(counts, targets, strict=True)) if c != want]
        if not todo:
            break
        for i in todo:
            diff = counts[i] - targets[i]
            ws = words[i]
            if diff > 0:
                dropped = 0
                while dropped < diff and len(ws) > 1:  # never drop the leading serial number
                    dropped += cost.get(ws.pop(), 1)
                diff -= dropped
            ws.extend(rng.choice(ones) for _ in range(-diff))
        fresh = await tokenize([" ".join(words[i]) for i in todo])
        for i, c in zip(todo, fresh, strict=True):
            counts[i] = c
    return [(" ".join(w), c) for w, c in zip(words, counts, strict=True)]


async def sharegpt(cfg: LoadConfig, path: str, count: int, tokenize: Tokenizer | None,
                   output_len: int | None = None, max_input: int = 1024, max_total: int = 2048,
                   min_tokens: int = 4) -> Workload:
    """ShareGPT-format JSON: ``[{"conversations": [{"from": "human", "value": ...}, {"from": "gpt", ...}]}]``.

    The first human turn is the prompt; the first reply's length is the output length. The usual
    filters apply (vllm bench serve's): both sides >= 4 tokens, input <= 1024, input + output <=
    2048. ``output_len`` (``--output-len`` given explicitly) overrides the reply's length.
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise BadInput(f"--dataset {path}: no such file", "give the path to a ShareGPT-format JSON file") from None
    except ValueError as exc:
        raise BadInput(f"--dataset {path}: not valid JSON ({exc})", "give a ShareGPT-format JSON file") from None
    if not isinstance(data, list):
        raise BadInput(f"--dataset {path}: the top level is not a list", 'expected [{"conversations": [...]}, ...]')
    pairs: list[tuple[str, str]] = []
    for k, item in enumerate(data):
        conv = item.get("conversations") if isinstance(item, dict) else None
        if not isinstance(conv, list):
            raise BadInput(f"--dataset {path}: entry {k} has no `conversations` list",
                           'each entry is {"conversations": [{"from": "human", "value": "..."}, ...]}')
        if len(conv) < 2 or not all(isinstance(t, dict) and isinstance(t.get("value"), str) for t in conv[:2]):
            continue
        pairs.append((conv[0]["value"], conv[1]["value"]))
    rng = random.Random(cfg.seed)
    rng.shuffle(pairs)
    pairs = pairs[: max(count * 4, 64)]  # measure a bounded sample, not a 90k-entry file
    if tokenize is not None:
        in_counts = await tokenize([p for p, _ in pairs])
        out_counts = await tokenize([r for _, r in pairs])
    else:
        in_counts = [max(1, len(p) // 4) for p, _ in pairs]
        out_counts = [max(1, len(r) // 4) for _, r in pairs]
    prompts: list[Prompt] = []
    for (text, _), n_in, n_out in zip(pairs, in_counts, out_counts, strict=True):
        if n_in < min_tokens or n_out < min_tokens or n_in > max_input or n_in + n_out > max_total:
            continue
        out_len = output_len or n_out
        prompts.append(Prompt(text, n_in if tokenize else None, out_len, None if tokenize else n_in))
        if len(prompts) >= count:
            break
    if not prompts:
        raise BadInput(f"--dataset {path}: no conversation passes the filters (>= {min_tokens} tokens each side, "
                       f"input <= {max_input}, total <= {max_total})", "use a ShareGPT file with real conversations")
    return Workload(prompts, tokenize is not None, f"sharegpt({file.name})")


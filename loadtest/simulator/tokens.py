"""Token counting and output text for the simulated endpoint (no tokenizer download).

Prompts: a token-id list counts as its length (as vLLM counts ``prompt: [ids]``). Text is split
by a fixed rule that stands in for the model's BPE tokenizer: one token per run of letters or
digits (split every 6 characters, as BPE splits long words) and one per other visible character,
plus the beginning-of-sequence token Llama-family tokenizers add. Chat messages add the chat
template's tokens per message. The rule is documented (docs/performance-model.md) so a load test
can build prompts of an exact length; the endpoint's ``usage`` reports these counts exactly as the
real server reports its tokenizer's.

Output: each generated token is one word from a fixed list, chosen by (seed, request, index), so
the same seed gives the same text and the text re-tokenizes to exactly the reported count.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence

_PIECE = re.compile(r"[A-Za-z0-9]{1,6}|[^\sA-Za-z0-9]")
BOS_TOKENS = 1  # <s>
CHAT_TOKENS_PER_MESSAGE = 4  # role header and end-of-turn markers of a chat template
CHAT_GENERATION_PROMPT_TOKENS = 3  # the template's assistant header after the last message

WORDS = (  # all at most 6 letters: each is exactly one token under the rule above
    "the", "model", "serves", "tokens", "from", "a", "batch", "of", "each", "step", "and", "cache", "keeps",
    "keys", "values", "for", "every", "layer", "so", "decode", "reads", "them", "while", "prompt", "in", "with",
    "memory", "limits", "but", "grows", "as", "larger", "share", "across", "users", "when", "queue", "is", "long",
    "time", "to", "first", "token", "rises", "then", "output", "flows", "at", "steady", "pace", "until", "end",
    "text", "fast", "slow", "work", "fits", "room", "more", "less", "load", "peak", "rate", "wait",
)


def count_text(text: str, *, bos: bool = True) -> int:
    """Tokens the stand-in tokenizer gives ``text`` (with the BOS token when ``bos``)."""
    return len(_PIECE.findall(text)) + (BOS_TOKENS if bos else 0)


def pieces(text: str) -> list[tuple[str, int, int]]:
    """The stand-in tokenizer's tokens of ``text`` (without BOS): (text, start, stop) offsets."""
    return [(m.group(), m.start(), m.end()) for m in _PIECE.finditer(text)]


def count_prompt(prompt: str | Sequence[int] | Sequence[str]) -> int:
    """vLLM completions' ``prompt``: a string, or a list of token ids (counted as given)."""
    if isinstance(prompt, str):
        return count_text(prompt)
    if prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return len(prompt)
    raise TypeError("prompt must be a string or a list of token ids")


def count_chat(messages: Sequence[dict]) -> int:
    """Prompt tokens of a chat request after the chat template is applied."""
    total = BOS_TOKENS + CHAT_GENERATION_PROMPT_TOKENS
    for m in messages:
        content = m.get("content", "")
        if isinstance(content, list):  # OpenAI content parts: only text parts count
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        total += CHAT_TOKENS_PER_MESSAGE + count_text(str(content), bos=False)
    return total


def token_text(seed: int, rid: int, index: int) -> str:
    """The ``index``-th generated token of request ``rid``: a space and one word."""
    h = (seed * 1_000_003 + rid * 8191 + index * 131) & 0xFFFFFFFF
    h = (h ^ (h >> 13)) * 0x5BD1E995 & 0xFFFFFFFF
    return " " + WORDS[(h ^ (h >> 15)) % len(WORDS)]


NATURAL_MEDIAN_TOKENS = 200  # the simulated model's answer length when nothing caps it


def natural_length(seed: int, key: int, cap: int) -> int:
    """Where the simulated model would emit EOS: a seeded log-normal draw (median 200 tokens).

    Used only when a request gives no ``max_tokens`` and does not set ``ignore_eos`` (a chat
    request's default cap is the whole remaining context, which a real model never fills).
    """
    n = round(NATURAL_MEDIAN_TOKENS * math.exp(0.6 * random.Random(seed * 7919 + key).gauss(0.0, 1.0)))
    return max(1, min(cap, n))

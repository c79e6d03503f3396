"""The documented tokenizer rule: counts a load test can rely on."""

from __future__ import annotations

import pytest

from loadtest.simulator.tokens import WORDS, count_chat, count_prompt, count_text, token_text


def test_text_rule():
    assert count_text("hello world") == 3  # two words + BOS
    assert count_text("hello, world!", bos=False) == 4  # punctuation counts
    assert count_text("internationalization", bos=False) == 4  # long words split every 6 characters


def test_token_ids_count_as_given():
    assert count_prompt(list(range(128))) == 128
    with pytest.raises(TypeError):
        count_prompt([1.5, 2])  # type: ignore[list-item]


def test_chat_template_tokens():
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert count_chat(msgs) == 1 + 3 + (4 + 2) + (4 + 1)


def test_output_text_is_deterministic_and_one_token_per_word():
    assert all(len(w) <= 6 for w in WORDS)
    a = [token_text(0, 5, i) for i in range(50)]
    assert a == [token_text(0, 5, i) for i in range(50)]
    assert a != [token_text(1, 5, i) for i in range(50)]
    assert count_text("".join(a), bos=False) == 50

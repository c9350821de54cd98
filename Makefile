# Set-up and the two everyday jobs. `make example` and `make test` each create
# .venv on first use (the CPU build of torch 2.13.0 first, so that pyproject's torch
# range installs nothing more; compressai, which `hsicodec train` and the tests use,
# without its dependencies, which would replace torch with a CUDA build through torchvision).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: example test test-fast clean

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps compressai==1.2.8
	touch $@

example: $(VENV)/.installed
	$(PY) examples/quickstart.py

test: $(VENV)/.installed
	$(VENV)/bin/pytest -q

# The user-facing paths in a few minutes: real-scene round trips, the CLI and its errors, source safety,
# the container. `make test` (CI's command) runs everything.
FAST_TESTS := tests/test_roundtrip_real.py tests/test_cli.py tests/test_source_safety.py tests/test_container.py
test-fast: $(VENV)/.installed
	$(VENV)/bin/pytest -q $(FAST_TESTS)

clean:
	rm -rf $(VENV) examples/out

# Set-up and the two everyday jobs. `make example` and `make test` each create
# .venv on first use (CPU torch pinned; compressai without its dependencies,
# which would replace torch with a CUDA build through torchvision).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: example test clean

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps compressai==1.2.8
	touch $@

example: $(VENV)/.installed
	$(PY) examples/quickstart.py

test: $(VENV)/.installed
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) examples/out

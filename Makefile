# imgclf: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# DVC runs each stage's `python ...` through the shell: put the venv first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test test-fast lint install install-dev lock bench clean-venv

run: install  ## create .venv, install, run the whole pipeline on the demo data, print metrics
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show metrics/index.json metrics/split.json metrics/logreg_search.json
	$(BIN)/dvc metrics show -R metrics/evaluation/models --precision 3
	$(BIN)/imgclf compare

test: install-dev  ## install test deps and run every test
	$(BIN)/pytest -n 2 --dist loadfile --durations=30

test-fast: install-dev  ## skip the slow end-to-end tests
	$(BIN)/pytest -m "not slow"

lint: install-dev
	$(BIN)/ruff check src stages tests bench scripts
	$(BIN)/ruff format --check src stages tests bench scripts

bench: install  ## benchmarks (not part of the tests); each prints ratios to its baseline
	$(BIN)/python bench/pack.py
	$(BIN)/python bench/train_input.py

install: $(VENV)/.installed $(VENV)/.dvc-writes
install-dev: $(VENV)/.installed-dev $(VENV)/.dvc-writes

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	touch $@

$(VENV)/.installed: $(VENV)/.created requirements.txt pyproject.toml
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# DVC writes dvc.lock, params.yaml and its other files in place; this makes it write them
# whole in this environment (a .pth file; pip installs leave it alone).
$(VENV)/.dvc-writes: $(VENV)/.installed src/imgclf/dvcwrites.py
	$(BIN)/python -m imgclf.dvcwrites
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

lock:  ## re-resolve the pinned versions from pyproject.toml's ranges
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet .
	{ sed -n '1,2p' requirements.txt; .venv-lock/bin/python -m pip freeze --exclude imgclf; } \
		> requirements.txt.new && mv requirements.txt.new requirements.txt
	rm -rf .venv-lock

clean-venv:
	rm -rf $(VENV)

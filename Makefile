# imgclf: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# DVC runs each stage's `python ...` through the shell: put the venv first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test test-fast lint docs install install-dev lock bench clean-venv

run: install  ## create .venv, install, run the whole pipeline on the demo data, print metrics
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show metrics/index.json metrics/split.json metrics/logreg_search.json
	$(BIN)/dvc metrics show metrics/evaluation/headline.json --precision 3
	$(BIN)/imgclf compare

test: install-dev  ## install test deps and run every test
	$(BIN)/pytest -n 2 --dist loadfile --durations=30

test-fast: install-dev  ## skip the slow end-to-end tests
	$(BIN)/pytest -m "not slow"

lint: install-dev
	$(BIN)/ruff check src stages tests bench scripts
	$(BIN)/ruff format --check src stages tests bench scripts

docs: install-dev  ## the documentation (docs/, mkdocs.yml) built into site/; a broken link fails it
	$(BIN)/mkdocs build --strict --site-dir site

bench: install  ## benchmarks (not part of the tests); each prints ratios to its baseline
	$(BIN)/python bench/pack.py
	$(BIN)/python bench/train_input.py

install: $(VENV)/.installed $(VENV)/.dvc-writes
install-dev: $(VENV)/.installed-dev $(VENV)/.dvc-writes

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	touch $@

# GPU=1 (Linux x86-64): TensorFlow's CUDA build in place of tensorflow-cpu, at the pinned
# version. The choice is remembered in the venv ($(VENV)/.gpu), so a later `make install`
# (after requirements.txt changed, say) keeps it; `make clean-venv install` goes back to CPU.
GPU ?= $(if $(wildcard $(VENV)/.gpu),1)
TENSORFLOW_VERSION = $(shell sed -n 's/^tensorflow-cpu==\([^ ;]*\).*/\1/p' requirements.txt)

$(VENV)/.installed: $(VENV)/.created requirements.txt pyproject.toml $(if $(GPU),$(VENV)/.gpu)
ifeq ($(GPU),)
	$(BIN)/python -m pip install --quiet -r requirements.txt
else
	$(BIN)/python -m pip uninstall --quiet -y tensorflow-cpu
	$(BIN)/python -m pip install --quiet -r <(grep -v '^tensorflow-cpu==' requirements.txt) \
		"tensorflow[and-cuda]==$(TENSORFLOW_VERSION)"
endif
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.gpu: $(VENV)/.created
	touch $@

# DVC writes dvc.lock, params.yaml and its other files in place; this makes it write them
# whole in this environment (a .pth file; pip installs leave it alone).
$(VENV)/.dvc-writes: $(VENV)/.installed src/imgclf/dvcwrites.py
	$(BIN)/python -m imgclf.dvcwrites
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# A universal resolve: one file whose markers choose per platform (tensorflow-cpu on Linux
# x86-64, tensorflow on Linux aarch64 and macOS arm64); uv keeps the versions already pinned.
lock:  ## re-resolve the pins from pyproject.toml's ranges, for every platform at once
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet uv==0.13.8
	cp requirements.txt requirements.txt.new
	.venv-lock/bin/uv pip compile --quiet --universal --python-version 3.11 --no-annotate \
		--no-header pyproject.toml -o requirements.txt.new
	{ sed -n '1,3p' requirements.txt; cat requirements.txt.new; } > requirements.txt.tmp
	mv requirements.txt.tmp requirements.txt && rm -rf .venv-lock requirements.txt.new

clean-venv:
	rm -rf $(VENV)

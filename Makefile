# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv when it is missing.  torch is pinned and installed *before*
# the package so that pip never resolves a newer, multi-GB CUDA build here.
# The editable install is in compat mode: a plain path entry to the source tree (where the links
# sspsim/real, sspsim/proofs_check and sspsim/reports complete the package), which type checkers
# and subprocesses (torchrun) follow like any installed package.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sspsim-installed
JOBS   ?= 2

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[real,reports,ray,tensorboard,dev]' --config-settings editable_mode=compat
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sspsim demo

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis

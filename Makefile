# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv when it is missing.  torch is pinned and installed *before*
# the package so that pip never resolves a newer, multi-GB CUDA build here.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sspsim-installed
JOBS   ?= 2

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[real,reports,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sspsim demo

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -q

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis

# One venv, rebuilt when pyproject.toml changes. Only Python 3.11 and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-quick fuzz pictures clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rxfill demo

# Two workers: the suite waits on simulated machines more than it computes (9.5 min alone,
# 5.3 min on two workers here). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

# The fuzz suite long: FUZZ_EXAMPLES examples a test (make test runs 40).
FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_fuzz.py --timeout=3600

# The README's pictures (a vial label, the demo's table, the console's pages from its browser
# tests) and the packages' imports (docs/).
pictures: $(STAMP)
	$(BIN)/python docs/pictures.py
	$(BIN)/python docs/architecture.py
	RXFILL_SCREENSHOTS=docs/console $(BIN)/python -m pytest tests/test_console_browser.py -q

lint: $(STAMP)
	$(BIN)/ruff check controller drivers simulators tests bench docs
	$(BIN)/mypy
	$(BIN)/mypy docs/pictures.py docs/architecture.py docs/convergence.py
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info

# dnpu: `make run` sets up and runs the whole pipeline; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
CORES  ?= all

.PHONY: setup eda-tools browser run report verify dry-run test test-slow bench lint clean

setup: $(VENV)/.installed eda-tools browser

# The virtual environment is rebuilt whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "dnpu needs Python 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Debian EDA tools for the RTL and synthesis stages; installed only when running as root and missing.
EDA_PACKAGES := yosys opensta iverilog verilator
eda-tools:
	@missing=""; for tool in yosys sta iverilog verilator; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian EDA packages ($$missing missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(EDA_PACKAGES) >/dev/null; \
	else \
		echo "note: EDA tools missing ($$missing); install: sudo apt-get install $(EDA_PACKAGES)"; \
	fi

# Headless Chromium, which the report's test opens results/report.html in (tests/test_report.py);
# installed only when running as root and missing (the test skips, saying why, without it).
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian chromium (headless browser for the report test)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "note: chromium missing; the report test skips (install: sudo apt-get install chromium)"; \
	fi

run: setup
	$(BIN)/snakemake --cores $(CORES)

# The HTML report of the finished run (every figure and key table, captioned): results/report.html.
report: run
	$(BIN)/snakemake --report results/report.html

# The compiler's token-for-token check on the trained models (config: verify; docs/compiler.md has its time).
verify: setup
	$(BIN)/snakemake --cores $(CORES) verify

dry-run: setup
	$(BIN)/snakemake -n

test: setup
	$(BIN)/pytest -n 2 -q --durations=15

test-slow: setup
	$(BIN)/pytest -n 2 -q -m slow

bench: setup
	for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

lint: setup
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake

# synthscope: two commands for a newcomer (`make demo`, `make test`) plus `make bench`.
# Set-up is idempotent: the venv is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synthscope-installed
HOST ?= 127.0.0.1
PORT ?= 8866

.PHONY: setup demo test test-fast bench browser clean-venv

setup: $(STAMP)

# torch/torchvision are pinned in pyproject.toml (the only pair that imports together here;
# an unpinned torch pulls a multi-GB CUDA build).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	$(PY) -m pip install --quiet -e ".[dashboard,test,astra,dask,faiss]"
	touch $(STAMP)

# Debian's chromium for the browser tests (never `playwright install`: it downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium (browser tests will skip)"; fi; }

demo: setup
	$(VENV)/bin/synthscope demo --prepare --serve --host $(HOST) --port $(PORT)

# the suite runs in two passes at the same time: the browser tests one at a time at normal priority, and
# everything else under `nice` on one worker per core (at most 4; whole files per worker so module fixtures
# are built once, longest files first and a few long files split test by test: tests/conftest.py).
# The browser pass waits on pages about as much as it computes (about half a core), so the other
# pass fills the idle CPU; `nice` gives a Voila page, its kernel and Chromium the CPU first when they need
# it (at equal priority, beside CPU-bound tests on 2 cores, pages missed the tests' waits). Both passes
# build the shared inputs (small bench, its cache...) once, in one folder (tests/conftest.py build_once).
# The browser pass's output is printed after the other pass's; the make fails if either pass fails.
test: setup browser
	@built=$$(mktemp -d "$${TMPDIR:-/tmp}/synthscope-tests.XXXXXX"); log="$$built.browser.log"; \
	trap 'rm -rf "$$built"' EXIT; export SYNTHSCOPE_TEST_BUILT_ONCE="$$built"; \
	echo "browser tests run beside the others; their output follows theirs (log: $$log)"; \
	$(PY) -m pytest -m browser >"$$log" 2>&1 & browser=$$!; \
	nice -n 10 $(PY) -m pytest -n auto --maxprocesses 4 --dist loadfile -m "not browser"; others=$$?; \
	wait $$browser; browsers=$$?; \
	echo; echo "==================== browser tests (pytest -m browser) ===================="; cat "$$log"; \
	[ $$others -eq 0 ] && [ $$browsers -eq 0 ] && rm -f "$$log"

test-fast: setup
	$(PY) -m pytest -n auto --maxprocesses 4 --dist loadfile -m "not browser and not slow"

bench: setup
	$(PY) -m synthscope.benchmark.runner --out bench --section synthscope_dashboard.bench_section \
	  --section synthscope_dashboard.bench_browser

clean-venv:
	rm -rf $(VENV)

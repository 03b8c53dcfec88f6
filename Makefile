# One-command entry points. `make demo` and `make test` build the environment first (make setup).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint params clean reliability bench

setup: $(STAMP)

$(STAMP): requirements.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: setup
	$(PY) -m matte_ros.demo $(DEMO_ARGS)

test: setup
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

lint: setup
	$(PY) -m pytest -q -m linter

params: setup
	$(PY) -m matte_ros.cli.main params --format yaml > config/matte.yaml
	$(PY) -m matte_ros.cli.main params --update-readme README.md

clean:
	rm -rf out build install log .pytest_cache

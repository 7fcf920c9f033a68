# Two commands that work on a fresh machine with Python 3.11+:
#   make demo   a local three-tier network on SQLite, sample requests flowing through it
#   make test   the test suite
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint protos

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m demo_network

# The end-to-end tests start hundreds of node processes; compiled once here, the sources are
# not compiled again by each of them where PYTHONDONTWRITEBYTECODE is set (a quarter second each).
test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m compileall -q protos messages relay casework district_node township_node village_agent demo_network
	$(PY) -m pytest -q -n 2 -m "not solo"
	$(PY) -m pytest -q -m solo

protos: $(VENV)/.installed
	$(PY) scripts/gen_protos.py

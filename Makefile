# The two commands a newcomer needs:  make demo   and   make test
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test fuzz lint typecheck backtest clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	# CPU torch first: an unpinned torch would pull gigabytes of CUDA packages
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install  ## load the demo data, build the indexes, serve the UI on http://127.0.0.1:8000
	HF_HUB_OFFLINE=1 $(VENV)/bin/refmatch demo --fresh
	$(VENV)/bin/refmatch index status
	$(VENV)/bin/refmatch match IE-ARAMEX -k 3
	HF_HUB_OFFLINE=1 $(VENV)/bin/refmatch serve --host $(HOST) --port $(PORT)

test: install  ## the test suite (what CI runs)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

fuzz: install  ## schemathesis against the OpenAPI document, every operation and role (what CI runs too)
	HF_HUB_OFFLINE=1 $(PY) scripts/fuzz_api.py

backtest: install  ## replay RavenStack churn history through the risk rules and the fitted model
	$(PY) scripts/backtest_risk.py

lint: install  ## ruff: lint and formatting
	$(VENV)/bin/ruff check refmatch tests scripts
	$(VENV)/bin/ruff format --check refmatch tests scripts

typecheck: install  ## mypy over refmatch/ (settings in pyproject.toml)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) refmatch.db refmatch.db-wal refmatch.db-shm indexes/*.faiss indexes/*.json

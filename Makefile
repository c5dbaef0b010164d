# Two commands: `make report` (default profile, embedded Bunny) and `make test`.
PROFILE ?= quick
# extra report flags, e.g. --executor local --jobs 2, or --executor slurm -p slurm_partition=gpu -p slurm_gpus=1
REPORT_ARGS ?=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: report test lab setup clean-reports

# Install only when pyproject.toml changed since the last install (idempotent: a second run does nothing).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

report: $(STAMP)
	$(PY) -m hnerv_lib.report --profile $(PROFILE) $(REPORT_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

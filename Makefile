# The two commands of the README: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup system-deps run test lint down bench clean

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(BIN)/regionguard up
	$(BIN)/regionguard drill --fault kill-region --duration 15s --rate 100 --out .regionguard/reports
	@echo
	@echo "The sandbox keeps running (the drill healed it). Try:"
	@echo "  open .regionguard/reports/drill-report.html   # the drill's timeline"
	@echo "  $(BIN)/regionguard status        # regions, roles, lag, traffic share"
	@echo "  $(BIN)/regionguard down          # stop every process it started"

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

down:
	$(BIN)/regionguard down

clean:
	-$(BIN)/regionguard down --purge
	rm -rf $(VENV) .pytest_cache

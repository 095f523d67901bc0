# The two commands of the README: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# checkov pins older boto3/botocore/packaging than regionguard's: it gets a venv of its own
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
CHECKOV_VERSION := 3.3.30

.PHONY: setup system-deps run test lint down bench clean synth synth-check bundles lambda-bundle wheelhouse

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,aws]'
	@touch $(STAMP)

run: setup
	$(BIN)/regionguard up
	$(BIN)/regionguard drill --fault kill-region --duration 15s --rate 100 --out .regionguard/reports
	@echo
	@echo "The sandbox keeps running (the drill healed it). Try:"
	@echo "  open .regionguard/reports/drill-report.html   # the drill's timeline"
	@echo "  $(BIN)/regionguard status        # regions, roles, lag, traffic share, status page URL"
	@echo "  $(BIN)/regionguard readiness     # would a failover work now?"
	@echo "  $(BIN)/regionguard down          # stop every process it started"

$(CHECKOV_STAMP):
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q 'checkov==$(CHECKOV_VERSION)'
	@touch $(CHECKOV_STAMP)

test: setup $(CHECKOV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

down:
	$(BIN)/regionguard down

# A deployable cloud assembly needs the artifacts the stacks deploy (no package index at deploy
# time); `synth-check` synthesizes for review without them.
synth: bundles
	$(BIN)/regionguard synth --out cdk.out --plan

synth-check: setup
	$(BIN)/regionguard synth --out cdk.out --check-only --plan

bundles: lambda-bundle wheelhouse

# The EC2 app: regionguard's wheel and its dependencies' (manylinux, CPython 3.11 as on Amazon
# Linux 2023), pinned by sha256 in requirements.txt; instances install them with --no-index
# --require-hashes from the CDK asset.
wheelhouse: setup
	rm -rf build/wheelhouse && mkdir -p build/wheelhouse
	$(BIN)/python -m pip wheel -q --no-deps -w build/wheelhouse .
	$(BIN)/python -m pip download -q -d build/wheelhouse --platform manylinux2014_x86_64 \
	  --python-version 3.11 --only-binary :all: --implementation cp \
	  "regionguard[app-aws] @ file://$(CURDIR)/$$(ls build/wheelhouse/regionguard-*.whl)"
	$(BIN)/python -m regionguard.infra.artifacts build/wheelhouse
	cd build/wheelhouse && ../../$(BIN)/python -m zipfile -c ../wheelhouse.zip .  # Terraform

# The failover/app Lambda code with its dependencies, for `cdk deploy` (no Docker: pip picks
# manylinux wheels for the Lambda runtime).
lambda-bundle: setup
	rm -rf build/lambda && mkdir -p build/lambda
	$(BIN)/python -m pip install -q --target build/lambda --platform manylinux2014_x86_64 \
	  --python-version 3.13 --only-binary :all: --implementation cp \
	  fastapi 'psycopg[binary]' psycopg-pool pymysql sqlalchemy mangum pydantic httpx tenacity \
	  boto3 aws-lambda-powertools
	cp -r src/regionguard build/lambda/
	cd build/lambda && ../../$(BIN)/python -m zipfile -c ../lambda.zip .  # for Terraform

clean:
	-$(BIN)/regionguard down --purge
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache

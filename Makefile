# The two commands of the README: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# checkov pins older boto3/botocore/packaging than regionguard's: it gets a venv of its own
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
CHECKOV_VERSION := 3.3.30
# The locks (requirements/*.lock: every package pinned by version and sha256) are generated from
# pyproject.toml's ranges by uv, in a venv of its own: `make lock`, `make lock-upgrade`.
LOCK_VENV := .venv-lock
UV_VERSION := 0.13.8
UV := $(LOCK_VENV)/bin/uv
UV_STAMP := $(LOCK_VENV)/.installed-stamp-$(UV_VERSION)
DEV_LOCK := requirements/dev.lock
EC2_LOCK := requirements/ec2.lock
LAMBDA_LOCK := requirements/lambda.lock

.PHONY: setup system-deps run test lint down bench clean synth synth-check bundles lambda-bundle wheelhouse \
	lock lock-upgrade docs

setup: system-deps $(STAMP)

# what apt-get installs when missing: `make run` only what running needs (DEPS=run), every
# other target what the tests need too (MariaDB, Chromium)
DEPS ?= test
system-deps:
	@bash scripts/install-system-deps.sh $(DEPS)

# Exactly the lock (regionguard's [dev,aws] extras, resolved for every platform), each file checked
# against its sha256; then regionguard itself, editable, with nothing more. `pip check` fails when
# pyproject.toml asks for something the lock lacks: run `make lock`.
$(STAMP): $(DEV_LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m pip check
	@touch $(STAMP)

run: DEPS = run
run: setup
	$(BIN)/regionguard up
	$(BIN)/regionguard drill --fault kill-region --out .regionguard/reports
	@echo
	@echo "The sites keep running (the drill healed them). Try:"
	@echo "  open .regionguard/reports/drill-001.html   # the drill's timeline"
	@echo "  $(BIN)/regionguard status        # regions, roles, the write lease, the edge URL"
	@echo "  $(BIN)/regionguard readiness     # would a failover work now?"
	@echo "  $(BIN)/regionguard events        # what each site's agent did"
	@echo "  $(BIN)/regionguard down          # stop every process it started"

$(CHECKOV_STAMP):
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q 'checkov==$(CHECKOV_VERSION)'
	@touch $(CHECKOV_STAMP)

# promtool checks and unit-tests monitoring/'s alert rules (the iac tier)
PROMTOOL := $(BIN)/promtool
$(PROMTOOL): | $(STAMP)
	@bash scripts/fetch-promtool.sh $(BIN)

test: lint $(CHECKOV_STAMP) $(PROMTOOL)
	$(BIN)/python -m pytest

# ruff, then mypy --strict with the pydantic plugin over src/ ([tool.mypy] in pyproject.toml)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

# One test tier each (the markers in pyproject.toml); `make unit` is the edit-test loop: lint and
# the pure tests, well under a minute.
.PHONY: unit local aws emulated iac lab
unit: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m unit

local aws emulated lab: setup
	$(BIN)/python -m pytest -m $@

iac: setup $(CHECKOV_STAMP) $(PROMTOOL)
	$(BIN)/python -m pytest -m iac

down:
	$(BIN)/regionguard down

# The documentation site (docs/, mkdocs.yml) into build/site, offline; --strict: a broken link
# or a page missing from the nav fails the build.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "open build/site/index.html"

# A deployable cloud assembly needs the artifacts the stacks deploy (no package index at deploy
# time); `synth-check` synthesizes for review without them.
synth: bundles
	$(BIN)/regionguard synth --out cdk.out --plan

synth-check: setup
	$(BIN)/regionguard synth --out cdk.out --check-only --plan

bundles: lambda-bundle wheelhouse

# The EC2 app: regionguard's wheel and its dependencies' (manylinux, CPython 3.11 as on Amazon
# Linux 2023), pinned by sha256 in requirements.txt; instances install them with --no-index
# --require-hashes from the CDK asset. The dependencies are requirements/ec2.lock's, checked
# against its hashes (--no-deps: the lock, resolved for that platform, is the whole set).
wheelhouse: setup
	rm -rf build/wheelhouse && mkdir -p build/wheelhouse
	$(BIN)/python -m pip wheel -q --no-deps -w build/wheelhouse .
	$(BIN)/python -m pip download -q -d build/wheelhouse --platform manylinux2014_x86_64 \
	  --python-version 3.11 --only-binary :all: --implementation cp \
	  --no-deps --require-hashes -r $(EC2_LOCK)
	$(BIN)/python -m regionguard.infra.artifacts build/wheelhouse
	cd build/wheelhouse && ../../$(BIN)/python -m zipfile -c ../wheelhouse.zip .  # Terraform

# The failover/app Lambda code with its dependencies, for `cdk deploy` (no Docker: pip picks
# manylinux wheels for the Lambda runtime): requirements/lambda.lock, checked against its hashes.
lambda-bundle: setup
	rm -rf build/lambda && mkdir -p build/lambda
	$(BIN)/python -m pip install -q --target build/lambda --platform manylinux2014_x86_64 \
	  --python-version 3.13 --only-binary :all: --implementation cp \
	  --no-deps --require-hashes -r $(LAMBDA_LOCK)
	cp -r src/regionguard build/lambda/
	cd build/lambda && ../../$(BIN)/python -m zipfile -c ../lambda.zip .  # for Terraform

# Re-resolve every lock from pyproject.toml (and requirements/lambda.in), keeping the pinned
# versions that still fit: after editing a range or adding a dependency. `make lock-upgrade`
# moves every package to its newest allowed version, `make lock-upgrade PACKAGE=fastapi` one.
# The EC2 and Lambda locks are constrained to the dev lock: they run the versions the tests ran.
UV_COMPILE = $(UV) pip compile -q --generate-hashes --custom-compile-command 'make lock' $(UPGRADE)
TARGET_LINUX := --python-platform x86_64-manylinux_2_17 -c $(DEV_LOCK)

lock: $(UV_STAMP)
	$(UV_COMPILE) pyproject.toml --extra dev --extra aws --universal --python-version 3.11 \
	  -o $(DEV_LOCK)
	$(UV_COMPILE) pyproject.toml --extra app-aws --python-version 3.11 $(TARGET_LINUX) -o $(EC2_LOCK)
	$(UV_COMPILE) requirements/lambda.in --python-version 3.13 $(TARGET_LINUX) -o $(LAMBDA_LOCK)

lock-upgrade:
	$(MAKE) lock UPGRADE='$(if $(PACKAGE),--upgrade-package $(PACKAGE),--upgrade)'

$(UV_STAMP):
	@test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q 'uv==$(UV_VERSION)'
	@touch $(UV_STAMP)

clean:
	-$(BIN)/regionguard down
	rm -rf $(VENV) $(CHECKOV_VENV) $(LOCK_VENV) .pytest_cache

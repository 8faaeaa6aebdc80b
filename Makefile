# Every target sets up what it needs: a virtualenv in .venv with the project and its dev tools.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=
# checkov (mlops scan) pins older pulumi, boto3 and numpy than the project's: its own virtualenv.
SCAN_VENV ?= .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: install demo test check lint typecheck format clean scan-env scan

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	# Bytecode now: with PYTHONDONTWRITEBYTECODE set (as in many CI images) every process would
	# compile Pulumi's providers and scikit-learn from source again, seconds each time.
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

$(SCAN_STAMP): pyproject.toml $(STAMP)
	test -x $(SCAN_VENV)/bin/python || python3 -m venv $(SCAN_VENV)
	$(BIN)/uv pip install --python $(SCAN_VENV)/bin/python --quiet --compile-bytecode -r pyproject.toml --extra scan
	rm -f $(SCAN_VENV)/.installed-* && touch $@

scan-env: $(SCAN_STAMP)  ## checkov in a virtualenv of its own (the scan extra), for `mlops scan`

scan: $(STAMP) $(SCAN_STAMP)  ## checkov's Kubernetes checks over every stack's planned objects
	$(BIN)/mlops scan

demo: $(STAMP)  ## the main job, on the embedded default: the whole platform on this machine
	$(BIN)/mlops demo

test: check $(SCAN_STAMP)  ## lint, type check, then every test (checkov's included)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/actionlint

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(SCAN_VENV) .mlops .pytest_cache .mypy_cache .ruff_cache

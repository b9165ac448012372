# Casino-Club — the front door. `make run` starts everything; `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
LINT_PATHS := ccweb worker realtime tests scripts bench loadtests migrations/env.py

.PHONY: run test lint fmt migrate seed services services-down bench bench-play bench-progress bench-realtime bench-shop bench-pipeline venv clean

$(STAMP): requirements.txt
	@scripts/bootstrap.sh "$(PY)" "$(VENV)"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	@scripts/run.sh

test: venv
	@scripts/test.sh

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	PYTHONPATH=. $(BIN)/lint-imports --no-cache

fmt: venv
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

services: venv
	@$(PY) scripts/services.py up

services-down:
	@$(PY) scripts/services.py down

migrate: venv services
	@scripts/with-services.sh $(BIN)/python -m ccweb.manage migrate

seed: venv services
	@scripts/with-services.sh $(BIN)/python -m ccweb.manage seed

bench: venv
	@scripts/with-services.sh $(BIN)/python -m bench.auth_me
	@scripts/with-services.sh $(BIN)/python -m bench.play
	@scripts/with-services.sh $(BIN)/python -m bench.cpu_cost
	@scripts/with-services.sh $(BIN)/python -m bench.progress
	@scripts/with-services.sh $(BIN)/python -m bench.shop

bench-play: venv
	@scripts/with-services.sh $(BIN)/python -m bench.play

bench-progress: venv
	@scripts/with-services.sh $(BIN)/python -m bench.progress

bench-realtime: venv
	@scripts/with-services.sh $(BIN)/python -m bench.realtime

bench-shop: venv
	@scripts/with-services.sh $(BIN)/python -m bench.shop

bench-pipeline: venv
	@scripts/with-services.sh $(BIN)/python -m bench.pipeline

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Casino-Club — the front door. `make run` starts everything; `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
LINT_PATHS := ccweb worker realtime tests scripts bench loadtests migrations/env.py

.PHONY: run test lint fmt migrate seed services services-down bench bench-play bench-progress bench-realtime bench-shop bench-pipeline loadtest venv clean

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

# SPEC §5 verdict (loadtests/run.py): Locust headless against the server at LOADTEST_HOST
# (default http://127.0.0.1:8000), or — when nothing answers there — web (CC_WEB_PROCESSES,
# default 2) + one worker started on a fresh seeded database; then the SLO table, exit 1
# on any FAIL. Reports in loadtests/reports/. The defaults take about 2.5 minutes.
LOADTEST_USERS ?= 200
LOADTEST_SPAWN_RATE ?= 10
LOADTEST_DURATION ?= 120
LOADTEST_HOST ?=

loadtest: venv
	@scripts/with-services.sh $(BIN)/python -m loadtests.run --users $(LOADTEST_USERS) \
		--spawn-rate $(LOADTEST_SPAWN_RATE) --duration $(LOADTEST_DURATION) \
		$(if $(LOADTEST_HOST),--host $(LOADTEST_HOST))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

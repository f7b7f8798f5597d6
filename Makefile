# Bookwell's commands. `make run` runs the system (api, relay, worker, scheduler); `make test` runs every gate and test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
MODELS := src/bookwell/contract/v1.py
INTEROP := tests/interop/node
CODEGEN = $(BIN)/datamodel-codegen --input src/bookwell/contract/openapi/v1.yaml --input-file-type openapi \
	--output-model-type pydantic_v2.BaseModel --openapi-scopes schemas paths parameters \
	--use-operation-id-as-name --target-python-version 3.11 --formatters ruff-format \
	--disable-timestamp --custom-file-header-path src/bookwell/contract/generated-header.txt \
	--type-overrides '{"Instant": "bookwell.contract.types.Instant"}'

.PHONY: run test test-busy bench lint typecheck imports contract-models contract-check configuration-doc slo-rules dashboards promtool lock clean

$(VENV)/.runtime: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@ $(VENV)/.runtime

# The npm verifier the webhook interop test checks deliveries with (tests/interop); skipped, and said so, without npm.
$(INTEROP)/node_modules/.package-lock.json: $(INTEROP)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(INTEROP) --no-audit --no-fund --silent; \
	else echo "npm not found: the webhook interop test with the npm verifier will be skipped (apt-get install nodejs npm)"; fi

run: $(VENV)/.runtime  ## Migrate, then run api (http://$(HOST):$(PORT)), relay, worker and scheduler; Ctrl-C stops all
	BOOKWELL_LOG_FORMAT=$${BOOKWELL_LOG_FORMAT:-console} $(BIN)/bookwell db upgrade
	BOOKWELL_HTTP_BIND=$(HOST):$(PORT) BOOKWELL_LOG_FORMAT=$${BOOKWELL_LOG_FORMAT:-console} PYTHONUNBUFFERED=1 $(BIN)/honcho --no-colour start --procfile Procfile

test: $(VENV)/.dev $(INTEROP)/node_modules/.package-lock.json promtool lint typecheck imports contract-check  ## Every gate, then every test
	$(BIN)/pytest

# Prometheus's promtool checks and unit-tests the SLO alerts (tests/ops); installed from Debian's
# prometheus package where it can be, else those tests are skipped, and said so.
promtool:
	@command -v promtool >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus >/dev/null; } || \
	  echo "promtool not found: the SLO rule tests will be skipped (apt-get install prometheus)"

slo-rules: $(VENV)/.dev  ## Regenerate ops/prometheus/ (rules, alerts and their tests) from ops/slo/
	$(BIN)/python tools/slo_rules.py

dashboards: $(VENV)/.dev  ## Regenerate the Grafana dashboards in ops/grafana/ from tools/dashboards.py
	$(BIN)/python tools/dashboards.py

test-busy: $(VENV)/.dev  ## The crash-safety and chaos tests, 3 rounds in a row, with every core busy with another process
	$(BIN)/python -m tests.support.busy --rounds 3 -- $(BIN)/pytest -x tests/integration/backbone/test_crash_safety.py tests/integration/payments/test_chaos.py

bench: $(VENV)/.dev  ## Benchmarks against local PostgreSQL, NATS, Redis and RabbitMQ (figures in docs/benchmarks.md)
	$(BIN)/python bench/relay.py
	$(BIN)/python bench/jobs.py
	$(BIN)/python bench/embedded_broker.py
	$(BIN)/python bench/request_path.py
	$(BIN)/python bench/webhooks.py
	command -v wrk >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null)
	$(BIN)/python bench/api.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/tracing.py

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

imports: $(VENV)/.dev
	PYTHONPATH=tools $(BIN)/lint-imports --no-cache

contract-models: $(VENV)/.dev  ## Regenerate the request models from the contract
	$(CODEGEN) --output $(MODELS)

configuration-doc: $(VENV)/.dev  ## Regenerate docs/configuration.md from the settings model
	$(BIN)/python -m bookwell_tools.settings_reference

contract-check: $(VENV)/.dev  ## Fail if the committed models drifted from the contract
	@mkdir -p build/contract-check
	@$(CODEGEN) --output build/contract-check/v1.py 2>/dev/null
	@diff -u $(MODELS) build/contract-check/v1.py && echo "contract models: no drift from src/bookwell/contract/openapi/v1.yaml"

lock:  ## Re-resolve requirements*.lock from pyproject.toml
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -q -o requirements-dev.lock

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

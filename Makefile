# dmzwatch: every target installs what it needs first (`make install`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORPUS ?= ../shared/corpus/news_dev.jsonl
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-unit test-integration test-e2e lint format typecheck run demo eval bench chaos clean schemas ops-tools compose-up compose-down

help: ## List every target
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

install: $(STAMP) ## Create .venv/ with dmzwatch and its pinned dependencies

test: $(STAMP) ops-tools lint typecheck ## Lint, type-check and run every test tier (unit, integration, e2e)
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: $(STAMP) ## Unit tests only (nothing running needed)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP) ## Integration tests (real Redis and the Tansu broker)
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-e2e: $(STAMP) ops-tools ## End-to-end tests (the four services as processes)
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

ops-tools: ## Debian's prometheus, promtool, amtool and kubectl when missing (the ops tests use them)
	@sh deploy/install-ops-tools.sh

compose-up: ## Build the image and start everything with docker compose (Kafka, Redis, Prometheus, Grafana, ...)
	docker compose up --build --detach

compose-down: ## Stop and remove the docker compose containers (volumes are kept)
	docker compose down --remove-orphans

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Apply ruff formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# mypy cannot follow setuptools' editable finder, so it reads a tree of links that mirrors the
# package-dir mapping of pyproject.toml.
schemas: $(STAMP) ## Regenerate the alert JSON Schema from the message models
	$(BIN)/python -c "import json; from dmzwatch.shared.messages import alert_json_schema as s; print(json.dumps(s(), indent=2))" > shared/schemas/alert.schema.json

typecheck: $(STAMP) ## mypy (strict on the shared library)
	@rm -rf build/typecheck && mkdir -p build/typecheck/dmzwatch
	@for f in cli/*; do ln -s $(CURDIR)/$$f build/typecheck/dmzwatch/; done
	@ln -s $(CURDIR)/shared build/typecheck/dmzwatch/shared
	@for s in services/*/; do ln -s $(CURDIR)/$${s%/} build/typecheck/dmzwatch/; done
	MYPYPATH=build/typecheck:$(CURDIR) $(BIN)/mypy -p dmzwatch -p chaos

run: $(STAMP) ## Start broker, the four services and the demo feeds; Ctrl-C stops all
	$(BIN)/dmzwatch stack

demo: $(STAMP) ## One pass over the demo feeds through the whole pipeline; prints alerts
	$(BIN)/dmzwatch demo

eval: $(STAMP) ## Classifier precision/recall/F1 on the labelled corpus
	$(BIN)/dmzwatch eval $(CORPUS)

bench: $(STAMP) ## Benchmarks; writes bench/results.json (ONLY=replay,latency for some)
	$(BIN)/python -m bench $(if $(ONLY),--only $(ONLY))

chaos: $(STAMP) ## Faults on the running pipeline, one table row each (SHORT=1: the CI list)
	@mkdir -p build
	$(BIN)/python -m chaos $(if $(SHORT),--short) --json build/chaos.json

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache

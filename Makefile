# EnergySphere — the README quickstart as make targets.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export DJANGO_SETTINGS_MODULE ?= config.settings.local
BENCH ?=

.PHONY: setup run test lint format bench migrate demo contracts contracts-check clean-db

setup:
	@bash scripts/setup.sh

migrate: setup
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo_cooperative

## make run — set up everything, load the demo cooperative, start all processes (Ctrl-C stops all).
run: setup
	@bash scripts/run.sh

## make test — the same set-up, then lint, migration check, contract reproducibility (side by
## side: mypy alone takes most of that time), the suite.
CHECKS := lint-ruff lint-format lint-imports lint-mypy migrations-check $(if $(wildcard contracts/package.json),contracts-check)
test:
	@bash scripts/setup.sh --browser
	$(MAKE) --no-print-directory -j --output-sync=target $(CHECKS)
	DJANGO_SETTINGS_MODULE=config.settings.test $(VENV)/bin/pytest --create-db $(PYTEST_ARGS)

## make lint — ruff (style), import-linter (the architecture contracts in pyproject.toml), mypy
## (types), side by side.
lint:
	$(MAKE) --no-print-directory -j --output-sync=target lint-ruff lint-format lint-imports lint-mypy

.PHONY: lint-ruff lint-format lint-imports lint-mypy migrations-check
lint-ruff:
	$(VENV)/bin/ruff check .
lint-format:
	$(VENV)/bin/ruff format --check .
lint-imports:
	$(VENV)/bin/lint-imports --no-logo
lint-mypy:
	$(VENV)/bin/mypy

migrations-check:
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py makemigrations --check --dry-run

format:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Drop the local database and chain state (the next `make run` rebuilds the demo from scratch).
clean-db:
	@bash scripts/services.sh >/dev/null
	psql postgres://postgres@127.0.0.1:5432/postgres -qc 'DROP DATABASE IF EXISTS energysphere WITH (FORCE)'
	rm -rf var/anvil var/celerybeat-schedule

## Compile contracts (standard JSON, pinned solc) into contracts/build/.
contracts: setup
	cd contracts && npm run --silent compile

## Recompile and fail if the committed artifacts differ.
contracts-check:
	cd contracts && npm run --silent compile
	@test -z "$$(git status --porcelain -- contracts/build)" || \
		(git status --short -- contracts/build; echo "contracts/build differs from a fresh compile: commit the artifacts"; exit 1)

## make bench [BENCH=name] — prints one JSON line per figure.
bench: migrate
	$(PY) bench/run.py $(BENCH)

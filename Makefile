# Dana — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?= -n 2
# Branch coverage of every run; the SQLite run may not drop under the floor (README: Tests).
COV_ARGS    ?= --cov --cov-branch --cov-report=term:skip-covered
COV_FLOOR   ?= 88

.PHONY: constraints run test lint test-sqlite test-postgres install install-dev migrate bench bench-answers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null

$(VENV)/.installed: requirements.txt constraints.txt $(BIN)/python
	$(BIN)/pip install -r requirements.txt -c constraints.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt constraints.txt $(VENV)/.installed
	$(BIN)/pip install -r requirements-dev.txt -c constraints.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make constraints: re-pin every package requirements*.txt pulls in (after editing them)
constraints: $(BIN)/python
	$(BIN)/pip install --dry-run --ignore-installed --quiet --report .venv/resolve.json \
		-r requirements-dev.txt
	$(BIN)/python -c "import json; r = json.load(open('.venv/resolve.json')); \
		pins = sorted((f\"{i['metadata']['name']}=={i['metadata']['version']}\" for i in r['install']), key=str.lower); \
		head = [l for l in open('constraints.txt') if l.startswith('#')]; \
		open('constraints.txt', 'w').write(''.join(head) + '\\n'.join(pins) + '\\n')"

## make run: install, migrate and serve on SQLite with the offline AI (python main.py)
run: install
	$(BIN)/python main.py

migrate: install
	$(BIN)/flask --app main db upgrade

## make test: the checks (make lint), then the whole suite on SQLite, then on PostgreSQL, each
## with branch coverage (the SQLite pass may not drop under COV_FLOOR). Every step runs and is
## reported even when an earlier one fails; the exit status is non-zero if any failed.
test: install-dev
	@lint=0; sqlite=0; postgres=0; \
	$(MAKE) -s lint || lint=$$?; \
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest $(PYTEST_ARGS) $(COV_ARGS) \
		--cov-fail-under=$(COV_FLOOR) || sqlite=$$?; \
	TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest $(PYTEST_ARGS) $(COV_ARGS) \
		|| postgres=$$?; \
	verdict() { if [ "$$1" = 0 ]; then echo passed; else echo "FAILED (exit $$1)"; fi; }; \
	echo "make test: lint $$(verdict $$lint); SQLite $$(verdict $$sqlite); PostgreSQL $$(verdict $$postgres)"; \
	[ $$lint = 0 ] && [ $$sqlite = 0 ] && [ $$postgres = 0 ]

## make lint: code standard (ruff: PEP 8, docstrings, bugbear) and import layers (import-linter)
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

test-sqlite: install-dev
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest $(PYTEST_ARGS) $(COV_ARGS) \
		--cov-fail-under=$(COV_FLOOR)

test-postgres: install-dev
	TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest $(PYTEST_ARGS) $(COV_ARGS)

## make bench: every benchmark on SQLite and PostgreSQL, one table (BENCH_ARGS=--full: 1M messages)
bench: install-dev
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## make bench-answers: answer quality per business (dev and test splits) and decision time
bench-answers: install-dev
	$(BIN)/python bench/answers.py

clean:
	rm -rf $(VENV) .pytest_cache .coverage .import_linter_cache

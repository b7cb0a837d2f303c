# Ticketing: `make run` to try it, `make test` to check it. Needs Python 3.11 and make.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
FAKE_IAMPORT_PORT ?= 8765

.PHONY: run test lint format messages migrate seed check-deploy system-deps clean help

help:
	@echo "make run     install, migrate, load demo data and start the site on http://$(HOST):$(PORT)/"
	@echo "make test    lint, migration and deploy checks, then the whole test suite"

$(BIN)/activate:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3

# Runtime packages: enough for `make run` (SQLite, no compiler needed).
# requirements-nodeps.txt holds iamport-rest-client, whose exact pin of an old,
# vulnerable requests must not be honoured: it runs on the requests we pin.
$(VENV)/.runtime: requirements.txt requirements-nodeps.txt | $(BIN)/activate
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

# Test packages include mysqlclient, which compiles against libmariadb-dev.
$(VENV)/.dev: requirements.txt requirements-nodeps.txt requirements-mysql.txt requirements-dev.txt | $(BIN)/activate system-deps
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@ $(VENV)/.runtime

# mysqlclient needs Debian's libmariadb-dev and pkg-config to build; the browser
# tests need Debian's Chromium. Install them when we can (root), else explain.
system-deps:
	@missing=""; \
	pkg-config --exists libmariadb 2>/dev/null || missing="$$missing libmariadb-dev pkg-config"; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "Please install these Debian packages first: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

messages: $(VENV)/.runtime
	$(BIN)/pybabel compile --statistics -d locale -D django 2>&1 | grep -v "^compiling" || true
	@test -f locale/ko/LC_MESSAGES/django.mo || { echo "Korean messages failed to compile"; exit 1; }

migrate: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

# The fake I'mport server (payments/fake_iamport) runs beside the site and stops with it.
run: messages seed
	@echo ""
	@echo "  Ticketing is starting at http://$(HOST):$(PORT)/  (staff admin: http://$(HOST):$(PORT)/admin/)"
	@echo "  Fake I'mport (payments) console: http://127.0.0.1:$(FAKE_IAMPORT_PORT)/__fake__/"
	@echo ""
	@$(PY) -m payments.fake_iamport --host 127.0.0.1 --port $(FAKE_IAMPORT_PORT) & fake=$$!; \
	trap 'kill $$fake 2>/dev/null' EXIT INT TERM; \
	SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)} \
	IAMPORT_API_URL=$${IAMPORT_API_URL:-http://127.0.0.1:$(FAKE_IAMPORT_PORT)/} \
	IAMPORT_JS_SDK_URL=$${IAMPORT_JS_SDK_URL:-http://127.0.0.1:$(FAKE_IAMPORT_PORT)/__fake__/iamport.js} \
	$(PY) manage.py runserver $(HOST):$(PORT)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Production settings must pass Django's deployment checks without a warning.
check-deploy: $(VENV)/.runtime
	DEBUG=0 SECRET_KEY=check-deploy-only-$$(date +%s)-a-long-random-looking-value-0123456789 \
	  ALLOWED_HOSTS=tickets.example.com IAMPORT_API_KEY=check-deploy IAMPORT_API_SECRET=check-deploy \
	  $(PY) manage.py check --deploy --fail-level WARNING

test: $(VENV)/.dev messages lint check-deploy
	$(PY) manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache

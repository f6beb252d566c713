# Two commands for a fresh machine: `make demo` and `make test`; both install into .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser demo test test-all lint typecheck clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

# Chromium for the Model Inspector's browser tests: installed as root, else those tests are skipped with the reason
browser:
	bash scripts/install_browser.sh

# the tests a developer runs after each change, on every core (pytest-xdist); the slow and the browser tests are
# in test-all, which CI runs
test: $(STAMP)
	$(PY) -m pytest -m "not slow and not browser" -n auto

test-all: $(STAMP) browser
	$(PY) -m pytest

# ruff's formatter (check only) and linter over the code, as CI and the pre-commit hooks run them
lint: $(STAMP)
	$(VENV)/bin/ruff format --check rrx tests scripts
	$(VENV)/bin/ruff check rrx tests scripts

# mypy over rrx/ at the strictness of [tool.mypy] in pyproject.toml, as CI runs it
typecheck: $(STAMP)
	$(VENV)/bin/mypy rrx

clean:
	rm -rf $(VENV) build *.egg-info
	rm -rf site

# The documentation site (docs/, mkdocs.yml) into site/; strict: a broken link, anchor or nav page fails the build
DOCS_STAMP := $(VENV)/.docs-installed
.PHONY: docs

$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

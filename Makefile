# Two commands for a fresh machine: `make demo` and `make test`; both install into .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser demo test test-all clean

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

test: $(STAMP) browser
	$(PY) -m pytest -m "not slow"

test-all: $(STAMP) browser
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build *.egg-info

# Two commands: `make run` starts everything, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test bench messages clean

$(VENV)/.installed: setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found %d.%d)" % sys.version_info[:2])'
	@echo "Setting up $(VENV) ..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	@echo "Installing test dependencies ..."
	@$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

run: $(VENV)/.installed
	@$(BIN)/smsgw serve --with-worker --demo

test: $(VENV)/.dev-installed
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev-installed
	@$(BIN)/python bench/bench_kernel.py

# Translators: refresh the catalogues after changing user-facing text.
messages: $(VENV)/.dev-installed
	@$(BIN)/pybabel extract -F babel.cfg --project smsgw --version 0.1 -o locale/smsgw.pot .
	@$(BIN)/pybabel update -i locale/smsgw.pot -d locale -D smsgw

clean:
	rm -rf $(VENV) build *.egg-info

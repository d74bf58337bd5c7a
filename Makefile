# Two commands: `make run` starts everything, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test bench messages language clean

# The embedded extra brings the PostgreSQL binaries `make run` starts when DATABASE_URL is unset;
# the companion (its own distribution) gives the demo phone its `smsgw-companion` command.
$(VENV)/.installed: setup.py android_companion/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found %d.%d)" % sys.version_info[:2])'
	@echo "Setting up $(VENV) ..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install --quiet --disable-pip-version-check -e '.[embedded]'
	@# After the server: reinstalling a server from before the split removes its `smsgw-companion`.
	@$(BIN)/pip install --quiet --disable-pip-version-check -e ./android_companion
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed setup.py
	@echo "Installing test dependencies ..."
	@$(BIN)/pip install --quiet --disable-pip-version-check -e '.[embedded,dev]'
	@touch $@

run: $(VENV)/.installed
	@$(BIN)/smsgw serve --with-worker --demo

# The suite runs in one process per core (JOBS), each taking whole test files (a file's tests keep
# their order: some build on the state the ones before left). `make test JOBS=1` for one process;
# PYTEST_ARGS adds to the command (`make test PYTEST_ARGS="-k routing -x"`).
JOBS ?= auto
test: $(VENV)/.dev-installed
	@$(BIN)/python -m pytest -n $(JOBS) --dist loadfile $(PYTEST_ARGS)

bench: $(VENV)/.dev-installed
	@$(BIN)/python bench/bench_kernel.py

# Translators: refresh the catalogues after changing user-facing text.
messages: $(VENV)/.dev-installed
	@$(BIN)/pybabel extract -F babel.cfg --project smsgw --version 0.1 -o locale/smsgw.pot .
	@$(BIN)/pybabel update -i locale/smsgw.pot -d locale -D smsgw

# Translators: start a new language, e.g. `make language CODE=it` (then translate locale/it/LC_MESSAGES/smsgw.po).
language: $(VENV)/.dev-installed
	@test -n "$(CODE)" || { echo "usage: make language CODE=it   (a language code: it, pt_BR ...)"; exit 2; }
	@$(BIN)/smsgw language add $(CODE)

clean:
	rm -rf $(VENV) build *.egg-info

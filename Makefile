# Two commands for a newcomer on Debian 12: `make run` and `make test`.
# Both bootstrap what they need: Debian packages (as root) and a .venv with the
# package and its extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SHARED := ../shared/tools
STAMP  := $(VENV)/.installed
DEMO   ?= /tmp/fswatchd-demo

.PHONY: run test lint unit deps clean bench bench-smoke

$(STAMP): pyproject.toml scripts/system-deps
	./scripts/system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[systemd,dev]'
	touch $@

deps: $(STAMP)

run: $(STAMP)
	mkdir -p $(DEMO)
	@echo "fswatchd: watching $(DEMO); try 'touch $(DEMO)/hello' in another terminal (Ctrl-C stops)"
	$(BIN)/fswatchd watch -r --json $(DEMO)

lint: $(STAMP)
	$(BIN)/ruff check fswatchd tests bench
	$(BIN)/ruff format --check fswatchd tests bench
	$(BIN)/mypy

# The journal tests need a real journald: with-journald gives the run a private one.
test: lint
	if [ -x $(SHARED)/with-journald ]; then \
	    $(SHARED)/with-journald -- $(BIN)/python -m pytest $(PYTEST_ARGS); \
	else \
	    $(BIN)/python -m pytest $(PYTEST_ARGS); \
	fi

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info

# Two commands for a newcomer on Debian 12: `make run` and `make test`.
# Both bootstrap what they need: Debian packages (as root) and a .venv with the
# package and its extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SHARED := ../shared/tools
STAMP  := $(VENV)/.installed
DEMO   ?= /tmp/fswatchd-demo

.PHONY: run watch test lint unit deps clean bench bench-smoke

$(STAMP): pyproject.toml setup.py fswatchd/actions/_clone.c scripts/system-deps
	./scripts/system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[systemd,dev]'
	touch $@

deps: $(STAMP)

# The rules daemon on the example rules (config/rules.yaml), which watch $(DEMO)/inbox.
run: $(STAMP)
	mkdir -p $(DEMO)/inbox
	@echo "fswatchd: running config/rules.yaml. In another terminal:"
	@echo "  echo hello > $(DEMO)/inbox/hello.txt; cat $(DEMO)/arrivals.log; ls $(DEMO)/outbox"
	@echo "(Ctrl-C stops)"
	$(BIN)/fswatchd run -c config/rules.yaml --log-target stderr

# The watcher alone, printing every event as a JSON line.
watch: $(STAMP)
	mkdir -p $(DEMO)
	$(BIN)/fswatchd watch -r --json $(DEMO)

lint: $(STAMP)
	$(BIN)/ruff check fswatchd tests bench
	$(BIN)/ruff format --check fswatchd tests bench
	$(BIN)/mypy

# The journal tests need a real journald: with-journald gives the run a private one.
# Its PID namespace hides the machine's PID 1, so the end-to-end test under systemd
# (marker e2e) runs first, outside it; exit 5 (nothing selected by PYTEST_ARGS) is fine.
test: lint
	if [ -x $(SHARED)/with-journald ]; then \
	    { $(BIN)/python -m pytest -m e2e $(PYTEST_ARGS); rc=$$?; [ $$rc = 0 ] || [ $$rc = 5 ]; } && \
	    $(SHARED)/with-journald -- $(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS); \
	else \
	    $(BIN)/python -m pytest $(PYTEST_ARGS); \
	fi

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info fswatchd/actions/*.so

# --- Installing as a service (docs/operations.md) -----------------------------------
# `make install` (as root) puts fswatchd in a venv of its own (Debian 12 refuses a
# system-wide pip install), a `fswatchd` command on PATH, the units, the inotify sysctl
# file, the journal message catalog, the docs and, only if absent, an example rules file.
# `make uninstall` removes all of it except /etc/fswatchd (your rules) and
# /var/lib/fswatchd (state). DESTDIR=/some/stage stages every file there instead (the
# live-system steps - daemon-reload, sysctl, catalog update - are then skipped).
INSTALL_PYTHON ?= /usr/bin/python3
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
VENVDIR    ?= /opt/fswatchd/venv
UNITDIR    ?= $(PREFIX)/lib/systemd/system
CATALOGDIR ?= $(PREFIX)/lib/systemd/catalog
DOCDIR     ?= $(PREFIX)/share/doc/fswatchd
SYSCTLDIR  ?= /etc/sysctl.d
CONFDIR    ?= /etc/fswatchd
UNITS      := fswatchd.service fswatchd@.service
# The units and catalog name the default paths; rewrite them when the paths change.
FIXPATHS   := sed -e 's|/usr/local/bin/fswatchd|$(BINDIR)/fswatchd|g' \
                  -e 's|/etc/fswatchd/|$(CONFDIR)/|g' \
                  -e 's|/usr/local/share/doc/fswatchd|$(DOCDIR)|g'

.PHONY: install uninstall

install:
	# What the service needs on a bare Debian: the venv module and the journal binding
	# (a compiler is not needed; where there is one, the C spawn helper is built too).
	scripts/system-deps python3-venv python3-systemd
	test -x $(DESTDIR)$(VENVDIR)/bin/python || \
	    $(INSTALL_PYTHON) -m venv --system-site-packages $(DESTDIR)$(VENVDIR)
	# --system-site-packages: Debian's python3-systemd satisfies the extra without a compiler
	$(DESTDIR)$(VENVDIR)/bin/pip install -q --disable-pip-version-check '.[systemd]'
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(CATALOGDIR) \
	    $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCTLDIR) $(DESTDIR)$(CONFDIR)
	# A wrapper, not a symlink to the venv's script: it stays valid when staged with
	# DESTDIR. -P keeps the current directory off sys.path.
	printf '#!/bin/sh\nexec %s/bin/python -P -m fswatchd "$$@"\n' '$(VENVDIR)' \
	    > $(DESTDIR)$(BINDIR)/fswatchd
	chmod 755 $(DESTDIR)$(BINDIR)/fswatchd
	for u in $(UNITS); do \
	    $(FIXPATHS) systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 644 $(DESTDIR)$(UNITDIR)/$$u; \
	done
	$(FIXPATHS) systemd/fswatchd.catalog > $(DESTDIR)$(CATALOGDIR)/fswatchd.catalog
	chmod 644 $(DESTDIR)$(CATALOGDIR)/fswatchd.catalog
	install -m 644 systemd/sysctl/60-fswatchd.conf $(DESTDIR)$(SYSCTLDIR)/60-fswatchd.conf
	install -m 644 docs/operations.md $(DESTDIR)$(DOCDIR)/operations.md
	# Never overwrite the operator's rules.
	test -e $(DESTDIR)$(CONFDIR)/rules.yaml || \
	    install -m 644 config/rules.yaml $(DESTDIR)$(CONFDIR)/rules.yaml
	if [ -z "$(DESTDIR)" ]; then \
	    journalctl --update-catalog || echo "install: journalctl --update-catalog failed" >&2; \
	    sysctl -q -p $(SYSCTLDIR)/60-fswatchd.conf || \
	        echo "install: could not apply $(SYSCTLDIR)/60-fswatchd.conf now (read-only /proc/sys?); it applies at boot" >&2; \
	    if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
	fi
	@echo "installed; start with: systemctl enable --now fswatchd"

uninstall:
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
	    systemctl disable --now fswatchd.service || true; \
	fi
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS)) $(DESTDIR)$(BINDIR)/fswatchd \
	    $(DESTDIR)$(CATALOGDIR)/fswatchd.catalog $(DESTDIR)$(SYSCTLDIR)/60-fswatchd.conf \
	    $(DESTDIR)$(DOCDIR)/operations.md
	rm -rf $(DESTDIR)$(VENVDIR)
	-rmdir $(DESTDIR)$(DOCDIR) $(dir $(DESTDIR)$(VENVDIR)) 2>/dev/null
	if [ -z "$(DESTDIR)" ]; then \
	    journalctl --update-catalog || true; \
	    if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
	fi
	@echo "uninstalled; kept $(CONFDIR) (rules) and /var/lib/fswatchd (state)"

# The benchmark suite (bench/README.md): peers into bench/.venv and from Debian, the C
# producer built, then every figure; BENCH_ARGS goes to bench/run.py (e.g. --figures 1,2).
bench: $(STAMP)
	./bench/setup.sh
	bench/.venv/bin/python bench/run.py $(BENCH_ARGS)

# The same suite at tiny sizes with the peers that need no `make bench` (part of `make test`).
bench-smoke: $(STAMP)
	$(BIN)/python -m pytest tests/bench $(PYTEST_ARGS)

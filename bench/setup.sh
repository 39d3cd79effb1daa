#!/bin/sh
# Installs the benchmark's peers (`make bench` runs this; bench/run.py builds the C producer).
#   Debian: watchman, inotify-tools, incron (where it installs; optional)
#   bench/.venv: inotify_simple, asyncinotify, watchdog[watchmedo], fswatchd from this repo
# Idempotent: a second run costs a dpkg query and a pip no-op.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}

need=""
for p in watchman inotify-tools; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
have_incron=yes
dpkg-query -W -f='${Status}' incron 2>/dev/null | grep -q "ok installed" || have_incron=no
if [ -n "$need" ] || [ "$have_incron" = no ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "bench/setup: missing Debian packages:$need (incron: $have_incron); run as root" >&2
        [ -z "$need" ] || exit 1
    else
        export DEBIAN_FRONTEND=noninteractive
        # A candidate version is known only after an index update on a fresh machine.
        apt-cache policy watchman 2>/dev/null | grep -q 'Candidate: [0-9]' || apt-get update -q
        if [ -n "$need" ]; then
            # shellcheck disable=SC2086
            apt-get install -y -q --no-install-recommends $need
        fi
        if [ "$have_incron" = no ]; then
            # incron is a peer of figure 5 only; the suite reports it as missing if this fails.
            apt-get install -y -q --no-install-recommends incron \
                || echo "bench/setup: incron did not install; figure 5 runs without it" >&2
        fi
    fi
fi

if [ ! -x "$here/.venv/bin/python" ]; then
    "$PYTHON" -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install -q --upgrade pip
"$here/.venv/bin/pip" install -q inotify_simple asyncinotify 'watchdog[watchmedo]' -e "$here/.."

# The C producer is compiled by bench/run.py itself (benchlib.common.build_producer,
# statically linked), so the binary always matches the flags the figures were measured with.

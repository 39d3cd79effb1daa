#!/bin/bash
# End-to-end test of the installed fswatchd service under a real systemd as PID 1.
#
#   ../shared/tools/systemd-box --packages make \
#       --bind-ro=/etc/ssl/certs/ca-certificates.crt:/etc/host-ca.crt \
#       --setenv PIP_CERT=/etc/host-ca.crt -- tests/e2e/run.sh
#
# tests/process/test_e2e_systemd.py runs exactly that (or, inside a box already, this
# script directly). It changes the system it runs on (make install, units, /etc/fswatchd,
# /srv/e2e), so it refuses to run outside a throwaway box ($SYSTEMD_BOX unset).
#
# Steps: make install; unit-lint of the installed units; start with tests/e2e/rules.yaml;
# STATUS in `systemctl status`; a file event runs an action; its outcome in the journal
# with structured fields; a bad reload fails and the old rules keep running; a good
# reload brings a new rule; a wedged daemon (SIGSTOP) is killed by the watchdog and
# restarted; `systemctl stop` drains a running slow action; an instance of the template
# unit runs; make uninstall.
# Every wait has a deadline. On failure it prints the step, the unit's state and its log.
set -Eeuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tools=$(cd "$repo/.." && pwd)/shared/tools
unit=fswatchd.service
srv=/srv/e2e
dropin=/etc/systemd/system/$unit.d/e2e-watchdog.conf
t0=${EPOCHREALTIME/./}
STEP="preflight"

now_us() { echo "${EPOCHREALTIME/./}"; }
# since START_US: seconds with one decimal
since() { local d=$(($(now_us) - $1)); printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000)); }
elapsed() { printf '%6ss' "$(since "$t0")"; }
step() { STEP=$*; echo "== [$(elapsed)] $STEP"; }
ok() { echo "   ok: $*"; }

diagnose() {
    echo "---- systemctl status $unit" >&2
    systemctl status "$unit" --no-pager -l >&2 || true
    echo "---- systemctl show" >&2
    systemctl show "$unit" -p ActiveState,SubState,Result,ReloadResult,StatusText,MainPID,NRestarts >&2 || true
    echo "---- journalctl -u $unit (last 60)" >&2
    journalctl --sync 2>/dev/null || true
    journalctl -u "$unit" --no-pager -n 60 -o short-monotonic >&2 || true
}

fail() {
    trap - ERR
    echo "FAIL [$STEP]: $*" >&2
    diagnose
    exit 1
}
trap 'fail "command failed (line $LINENO, status $?): $BASH_COMMAND"' ERR

# wait_until SECONDS WHAT CMD...: poll CMD every 0.1 s until it succeeds; fail naming WHAT.
wait_until() {
    local limit=$1 what=$2
    shift 2
    local deadline=$(($(now_us) + limit * 1000000))
    until "$@" >/dev/null 2>&1; do
        if (($(now_us) > deadline)); then
            fail "timed out after ${limit}s waiting for: $what"
        fi
        sleep 0.1
    done
}

prop() { systemctl show -P "$1" "$unit"; }
prop_is() { [ "$(prop "$1")" = "$2" ]; }
status_starts() { case "$(prop StatusText)" in "$1"*) return 0 ;; *) return 1 ;; esac; }
active_running() { prop_is ActiveState active && prop_is SubState running; }
sc() { timeout 60 systemctl "$@"; }
# journal_in UNIT FIELD=VALUE...: an entry of UNIT with these exact fields exists (printed).
journal_in() { journalctl --sync && "$here/journal-entry.py" "$@"; }
journal_has() { journal_in "$unit" "$@"; }
install_rules() { install -m 644 -o root -g root "$here/$1" /etc/fswatchd/rules.yaml; }

# ----------------------------------------------------------------------------------------
step "preflight: a throwaway box with systemd as PID 1, as root"
[ -n "${SYSTEMD_BOX:-}" ] || fail "SYSTEMD_BOX is unset: run this inside ../shared/tools/systemd-box (it changes the system)"
[ -d /run/systemd/system ] || fail "systemd is not PID 1 here"
[ "$(id -u)" = 0 ] || fail "needs root"
for tool in make python3; do command -v $tool >/dev/null || fail "$tool is missing in the box"; done
ok "$(systemctl --version | head -1), box $SYSTEMD_BOX"

# ----------------------------------------------------------------------------------------
step "make install (from a copy of the source tree)"
# A copy, so pip's in-tree build leaves nothing behind in the mounted repo.
src=$(mktemp -d /tmp/fswatchd-src.XXXXXX)
trap 'rm -rf "$src"' EXIT
tar -C "$repo" --exclude=./.git --exclude=./.venv --exclude=./build --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude='./.*_cache' --exclude=./.hypothesis --exclude=./bench \
    --exclude='*.so' \
    -cf - . | tar -C "$src" -xf -
t_install=$(now_us)
(cd "$src" && timeout 600 make install) >"$src.install.log" 2>&1 ||
    { cat "$src.install.log" >&2; rm -f "$src.install.log"; fail "make install failed"; }
rm -f "$src.install.log"
ok "installed in $(since "$t_install")s"
for f in /opt/fswatchd/venv/bin/python /usr/local/bin/fswatchd \
    /usr/local/lib/systemd/system/fswatchd.service /usr/local/lib/systemd/system/fswatchd@.service \
    /usr/local/lib/systemd/catalog/fswatchd.catalog /etc/sysctl.d/60-fswatchd.conf \
    /etc/fswatchd/rules.yaml; do
    [ -e "$f" ] || fail "make install did not install $f"
done
/usr/local/bin/fswatchd check -c /etc/fswatchd/rules.yaml >/dev/null ||
    fail "the installed example rules do not pass fswatchd check"
ok "files in place; the example rules pass fswatchd check"

# ----------------------------------------------------------------------------------------
step "unit-lint of the installed units (executables must exist)"
instance=$(mktemp -d)/fswatchd@e2e.service
cp /usr/local/lib/systemd/system/fswatchd@.service "$instance"
[ -x "$tools/unit-lint" ] || fail "unit-lint not found in $tools (../shared/tools beside the repo)"
"$tools/unit-lint" /usr/local/lib/systemd/system/fswatchd.service "$instance" ||
    fail "unit-lint reported problems in the installed units"
rm -rf "$(dirname "$instance")"
ok "fswatchd.service and fswatchd@e2e.service lint clean"

# ----------------------------------------------------------------------------------------
step "systemctl start $unit with the e2e rules"
rm -rf "$srv"
mkdir -p "$srv/in" "$srv/slow" "$srv/new" "$srv/out"
install_rules rules.yaml
sc start "$unit" # Type=notify: returns once the daemon sent READY=1
active_running || fail "not active/running after start: $(prop ActiveState)/$(prop SubState)"
pid1=$(prop MainPID)
ok "active (running), MainPID $pid1"

step "systemctl status shows the daemon's STATUS line"
status_line=$(systemctl status "$unit" --no-pager | grep -E '^ +Status: "2 rules, ' || true)
[ -n "$status_line" ] || fail "no 'Status: \"2 rules, ...' line in systemctl status"
ok "${status_line## }"

# ----------------------------------------------------------------------------------------
step "a file landing in a watched dir runs the action"
# A hostile name: spaces, shell syntax and a byte that is not UTF-8, passed through exactly.
name=$'hello $(touch pwned); `id` \xff.txt'
printf 'payload\n' >"$srv/in/$name"
# cp creates the copy before it fills it: wait for the content, not the name.
wait_until 10 "the copy of the file in $srv/out, with its content" \
    grep -qx payload "$srv/out/$name"
[ ! -e "$srv/in/pwned" ] && [ ! -e /pwned ] && [ ! -e "$srv/out/pwned" ] ||
    fail "a file name was interpreted by a shell"
ok "copied byte-exact; the name was not interpreted"

step "journalctl -u fswatchd FSWATCHD_RULE=e2e-copy: the outcome entry and its fields"
wait_until 10 "the action-finished entry in the journal" \
    journal_has FSWATCHD_RULE=e2e-copy MESSAGE_ID=0081743da4e24ba7a917363e98f26e3f \
    "FSWATCHD_PATH=$srv/in/$name" FSWATCHD_EXIT_STATUS=0 FSWATCHD_ACTION=run \
    SYSLOG_IDENTIFIER=fswatchd PRIORITY=6
journalctl --sync
n=$(journalctl -u fswatchd FSWATCHD_RULE=e2e-copy -o json --no-pager |
    grep -c '"MESSAGE_ID":"0081743da4e24ba7a917363e98f26e3f"' || true)
[ "$n" = 1 ] || fail "journalctl -u fswatchd FSWATCHD_RULE=e2e-copy shows $n outcome entries, expected 1"
entry=$(journal_has FSWATCHD_RULE=e2e-copy MESSAGE_ID=0081743da4e24ba7a917363e98f26e3f)
for field in FSWATCHD_EVENT_ID FSWATCHD_DURATION_MS FSWATCHD_ATTEMPT _SYSTEMD_UNIT; do
    grep -q "\"$field\"" <<<"$entry" || fail "the outcome entry lacks $field: $entry"
done
ok "$entry"
out=$(timeout 30 /usr/local/bin/fswatchd log -u fswatchd --rule e2e-copy)
grep -qF 'e2e-copy run ok exit 0' <<<"$out" && grep -qF '\xff.txt' <<<"$out" ||
    fail "fswatchd log -u fswatchd --rule e2e-copy does not show the outcome: $out"
ok "fswatchd log -u fswatchd: ${out#* }"

# ----------------------------------------------------------------------------------------
step "systemctl reload with a bad rules file fails visibly; the old rules keep running"
install_rules rules-bad.yaml
if reload_out=$(sc reload "$unit" 2>&1); then
    fail "systemctl reload succeeded with a bad rules file"
fi
ok "systemctl reload failed: $(head -1 <<<"$reload_out")"
prop_is ReloadResult exit-code || fail "ReloadResult=$(prop ReloadResult), expected exit-code"
wait_until 10 "active/running after the failed reload" active_running
[ "$(prop MainPID)" = "$pid1" ] || fail "MainPID changed after a failed reload"
status_starts "2 rules, " || fail "StatusText changed after a failed reload: $(prop StatusText)"
journalctl --sync
log=$(journalctl -u "$unit" -o cat --no-pager)
grep -qF "fswatchd: /etc/fswatchd/rules.yaml:" <<<"$log" ||
    fail "the check's error message (fswatchd: /etc/fswatchd/rules.yaml:LINE: ...) is not in the unit's log"
grep -qF "Reload failed for $unit" <<<"$log" || fail "systemd did not log 'Reload failed for $unit'"
printf 'again\n' >"$srv/in/after-bad-reload.txt"
wait_until 10 "the old rule e2e-copy to still run" test -e "$srv/out/after-bad-reload.txt"
ok "ReloadResult=exit-code, still active, same MainPID, old rule still runs"

step "systemctl reload with a good rules file: the new rules are in force"
install_rules rules-reloaded.yaml
sc reload "$unit"
# systemd 252, Type=notify: reload returns once the signal is sent; the daemon then says
# RELOADING=1 ... READY=1 with the new STATUS.
wait_until 15 "StatusText to start with '3 rules, '" status_starts "3 rules, "
wait_until 10 "active/running after the reload" active_running
wait_until 10 "the reload-ok entry in the journal" \
    journal_has MESSAGE_ID=937e0463324541baade8c6652b06337e "_PID=$pid1"
printf 'new\n' >"$srv/new/one.txt"
wait_until 10 "the new rule e2e-new to run" grep -qxF "$srv/new/one.txt" "$srv/out/new.log"
ok "StatusText: $(prop StatusText); e2e-new ran"

# ----------------------------------------------------------------------------------------
step "watchdog: a wedged daemon (SIGSTOP) is killed and restarted"
mkdir -p "$(dirname "$dropin")"
printf '[Service]\nWatchdogSec=2s\n' >"$dropin"
sc daemon-reload
sc restart "$unit"
pid2=$(prop MainPID)
[ "$(prop WatchdogUSec)" = 2s ] || fail "the drop-in did not set WatchdogSec=2s: $(prop WatchdogUSec)"
restarts=$(prop NRestarts)
kill -STOP "$pid2"
# WatchdogSec=2s: SIGABRT after 2 s without WATCHDOG=1; Result=watchdog holds through the
# RestartSec=2s before Restart=on-failure starts it again.
wait_until 15 "Result=watchdog" prop_is Result watchdog
ok "Result=watchdog ($(prop ActiveState)/$(prop SubState))"
wait_until 20 "the restart (NRestarts > $restarts, active/running)" \
    eval '[ "$(prop NRestarts)" -gt "$restarts" ] && active_running'
pid3=$(prop MainPID)
[ "$pid3" != "$pid2" ] || fail "MainPID did not change"
journalctl --sync
log=$(journalctl -u "$unit" -o cat --no-pager)
for line in "Watchdog timeout (limit 2s)!" "Killing process $pid2 (python) with signal SIGABRT." \
    "Failed with result 'watchdog'." "Scheduled restart job, restart counter is at"; do
    grep -qF "$line" <<<"$log" || fail "the journal lacks systemd's '$line'"
done
grep -q "Fatal Python error: Aborted" <<<"$log" || fail "no faulthandler traceback in the journal"
ok "systemd logged the watchdog timeout, SIGABRT, the faulthandler traceback and the restart:"
grep -E "^fswatchd.service: (Watchdog|Killing|Main process|Failed with|Scheduled)" <<<"$log" | sed 's/^/        /'
printf 'after\n' >"$srv/in/after-watchdog.txt"
wait_until 10 "e2e-copy to run in the restarted daemon" test -e "$srv/out/after-watchdog.txt"
ok "restarted as MainPID $pid3, NRestarts=$(prop NRestarts), Result=$(prop Result) again, rules run"

# ----------------------------------------------------------------------------------------
step "systemctl stop drains a running slow action, then stops with Result=success"
: >"$srv/slow/job.txt"
wait_until 10 "the slow action to start" test -e "$srv/out/slow-started"
[ ! -e "$srv/out/slow-done" ] || fail "the slow action finished before the stop began"
t_stop=$(now_us)
sc stop "$unit"
stop_s=$(since "$t_stop")
[ -e "$srv/out/slow-done" ] || fail "the slow action did not complete before the unit stopped"
prop_is ActiveState inactive || fail "ActiveState=$(prop ActiveState) after stop"
prop_is Result success || fail "Result=$(prop Result) after stop"
wait_until 10 "the slow action's outcome entry (exit 0) in the journal" \
    journal_has FSWATCHD_RULE=e2e-slow MESSAGE_ID=0081743da4e24ba7a917363e98f26e3f \
    FSWATCHD_EXIT_STATUS=0 "_PID=$pid3"
# (grep on a variable: `journalctl | grep -q` fails under pipefail when grep quits early.)
log=$(journalctl -u "$unit" -o cat --no-pager)
grep -qF "stop 4/4: done" <<<"$log" || fail "no 'stop 4/4: done' in the log"
ok "stopped in ${stop_s}s after the action completed; Result=success"

# ----------------------------------------------------------------------------------------
step "the template: fswatchd@e2e runs /etc/fswatchd/e2e.yaml with its own state directory"
install -m 644 -o root -g root "$here/rules.yaml" /etc/fswatchd/e2e.yaml
sc start fswatchd@e2e.service
[ "$(systemctl show -P ActiveState fswatchd@e2e.service)" = active ] || fail "fswatchd@e2e is not active"
[ -d /var/lib/fswatchd/e2e ] && [ -d /run/fswatchd/e2e ] ||
    fail "StateDirectory=/RuntimeDirectory= of the instance are missing"
printf 'instance\n' >"$srv/in/instance.txt"
wait_until 10 "the instance's copy action" test -e "$srv/out/instance.txt"
wait_until 10 "the instance's outcome entry under -u fswatchd@e2e" \
    journal_in fswatchd@e2e.service FSWATCHD_RULE=e2e-copy \
    "FSWATCHD_PATH=$srv/in/instance.txt" FSWATCHD_EXIT_STATUS=0
sc stop fswatchd@e2e.service
[ "$(systemctl show -P Result fswatchd@e2e.service)" = success ] || fail "fswatchd@e2e did not stop cleanly"
ok "started, ran an action, logged under fswatchd@e2e.service, stopped with Result=success"

# ----------------------------------------------------------------------------------------
step "make uninstall removes the installation and keeps /etc/fswatchd"
rm -f "$dropin"
rmdir "$(dirname "$dropin")"
(cd "$src" && timeout 120 make uninstall) >/dev/null 2>&1 || fail "make uninstall failed"
for f in /opt/fswatchd /usr/local/bin/fswatchd /usr/local/lib/systemd/system/fswatchd.service \
    /usr/local/lib/systemd/system/fswatchd@.service /usr/local/lib/systemd/catalog/fswatchd.catalog \
    /etc/sysctl.d/60-fswatchd.conf; do
    [ ! -e "$f" ] || fail "make uninstall left $f"
done
[ -e /etc/fswatchd/rules.yaml ] || fail "make uninstall removed the operator's rules"
[ "$(systemctl show -P LoadState "$unit")" = not-found ] || fail "$unit is still known to systemd"
rm -rf "$srv" /etc/fswatchd
ok "removed; /etc/fswatchd kept"

STEP="done"
echo "== [$(elapsed)] e2e: all steps passed"

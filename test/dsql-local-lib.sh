# The start every dsql-local test script shares. Sourced, not run:
#     . "$(dirname "$0")/dsql-local-lib.sh"
# (test/run-tests runs only test/t-*.sh, so this file is not a test.)
# Sets B (made absolute), L (dsql-local), T (dsql-token) and fail; defines
# pass, bad, check, need_pg15, make_tmp, stop_on_exit, start_local, use_local,
# until_file, until_sql, until_line, until_true, holds_for, alive and await.
set -u
B=${B:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
L=$B/dsql-local
T=$B/dsql-token
fail=0
pass() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
# check DESCRIPTION COMMAND...: pass or bad, as COMMAND exits
check() { lib_d=$1; shift; if "$@"; then pass "$lib_d"; else bad "$lib_d"; fi; }

# need_pg15 [COMMAND...]: the script needs PostgreSQL 15's server and every
# COMMAND named; without one of them it is skipped (exit 0), not failed.
need_pg15() {
    pg15_missing=0
    pg15_what="PostgreSQL 15 server"
    [ -x /usr/lib/postgresql/15/bin/initdb ] || pg15_missing=1
    for pg15_cmd in "$@"; do
        pg15_what="$pg15_what or $pg15_cmd"
        command -v "$pg15_cmd" >/dev/null || pg15_missing=1
    done
    [ $pg15_missing -eq 0 ] && return 0
    echo "skip: $pg15_what not installed"
    exit 0
}

# make_tmp: $tmp, a new directory others may enter and read: the server
# runs PostgreSQL as postgres when we are root.
make_tmp() {
    tmp=$(mktemp -d)
    chmod 755 "$tmp"
}

# stop_on_exit NAME...: when the script ends or is interrupted, stop the
# servers still running in $tmp/NAME... and remove $tmp.
stop_on_exit() {
    lib_servers=$*
    trap 'for lib_d in $lib_servers; do
              [ -f "$tmp/$lib_d/dsql-local.pid" ] && "$L" stop --state-dir "$tmp/$lib_d" >/dev/null 2>&1
          done
          rm -rf "$tmp"' EXIT
    trap 'exit 1' INT TERM
}

# start_local NAME [OPTION...]: dsql-local start --state-dir $tmp/NAME
# OPTION..., its exports in $tmp/NAME.env. A server that does not start
# fails the script here (in a background job: that job, with status 1).
start_local() {
    lib_name=$1
    shift
    "$L" start --state-dir "$tmp/$lib_name" "$@" >"$tmp/$lib_name.env" 2>"$tmp/$lib_name.err" &&
        return 0
    echo "FAIL dsql-local start ($lib_name): $(cat "$tmp/$lib_name.err")"
    exit 1
}

# use_local NAME: the environment of server NAME (started by start_local)
# and a token for its first host as PGPASSWORD, exported for psql.
use_local() {
    . "$tmp/$1.env"
    PGPASSWORD=$("$T" --hostname "$PGHOST")
    export PGPASSWORD
}

# until_file NAME: wait until $tmp/NAME exists (another session got there),
# 30 s at the most; the check that follows tells whether it did.
until_file() {
    lib_i=0
    while [ ! -e "$tmp/$1" ] && [ $lib_i -lt 600 ]; do
        sleep 0.05
        lib_i=$((lib_i + 1))
    done
}

# until_sql WANT SQL: run SQL (psql -X -At -c) until it prints WANT (a
# session got there), 60 s at the most (psql starts slowly on a loaded
# machine); the check that follows tells whether it did.
until_sql() {
    lib_i=0
    while [ "$(psql -X -At -c "$2" 2>&1)" != "$1" ] && [ $lib_i -lt 600 ]; do
        sleep 0.1
        lib_i=$((lib_i + 1))
    done
}

# until_line FILE PATTERN: wait until FILE has a line matching PATTERN
# (grep), 30 s at the most; fails when it never did.
until_line() {
    lib_i=0
    while ! grep -q -- "$2" "$1" 2>/dev/null; do
        [ $lib_i -lt 600 ] || return 1
        sleep 0.05
        lib_i=$((lib_i + 1))
    done
}

# until_true COMMAND...: run COMMAND until it succeeds, 60 s at the most;
# fails when it never did. For state another process reaches in its own
# time (a count in /proc, a metric, a file): one look can come too early
# on a loaded machine, and a broken feature still fails, only later.
until_true() {
    lib_t=0
    until "$@"; do
        [ $lib_t -lt 600 ] || return 1
        sleep 0.1
        lib_t=$((lib_t + 1))
    done
}

# holds_for SECONDS COMMAND...: COMMAND keeps succeeding for SECONDS (whole);
# fails at its first failure. For "this did not happen": a signal sent
# takes effect when the target is next scheduled, so one look right after
# can pass on a loaded machine although the thing did happen.
holds_for() {
    lib_h=$(($1 * 10))
    shift
    while [ $lib_h -gt 0 ]; do
        "$@" || return 1
        sleep 0.1
        lib_h=$((lib_h - 1))
    done
    "$@"
}

# alive PID: PID runs (a killed child of ours stays a zombie until reaped,
# so kill -0 is not enough)
alive() { [ -e /proc/"$1" ] && ! grep -q '^State:.*Z' /proc/"$1"/status 2>/dev/null; }

# await NAME: prints the psql meta-command (\!) that waits the same way, so
# a session's script can hold until the test says go.
await() {
    printf '\\! i=0; while [ ! -e %s ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n' "$tmp/$1"
}

# The start every dsql-local test script shares. Sourced, not run:
#     . "$(dirname "$0")/dsql-local-lib.sh"
# (test/run-tests runs only test/t-*.sh, so this file is not a test.)
# Sets B (made absolute), L (dsql-local), T (dsql-token) and fail; defines
# pass, bad, need_pg15 and make_tmp.
set -u
B=${B:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
L=$B/dsql-local
T=$B/dsql-token
fail=0
pass() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }

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

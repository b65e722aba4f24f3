# What the dsql-proxy test scripts share, on top of dsql-local-lib.sh
# (sourced from here). Sourced, not run, by a script and by its inner.sh:
#     . "$(dirname "$0")/dsql-proxy-lib.sh"    (the script)
#     . "$SRC/test/dsql-proxy-lib.sh"           (its inner.sh)
# A script calls proxy_script, writes its checks to $tmp/inner.sh, and ends
# with run_inner, which runs them against a dsql-local under one time limit.
# (test/run-tests runs only test/t-*.sh, so this file is not a test.)
# Sets P (dsql-proxy); defines proxy_script, usage, run_inner and, for
# inner.sh, has, has_text, start_proxy, stop_proxy, psql, $plain_psql,
# running, wait_running, raw and no_sanitizer_reports.
proxy_lib_dir=${SRC:+$SRC/test}
. "${proxy_lib_dir:-$(dirname "$0")}/dsql-local-lib.sh"
P=$B/dsql-proxy

# proxy_script [COMMAND...]: the start of a script: PostgreSQL 15 and each
# COMMAND (else a skip), $tmp, the gateway's cleanup at exit, and what its
# inner.sh needs exported.
proxy_script() {
    need_pg15 "$@"
    SRC=$(pwd)
    make_tmp
    stop_on_exit gw
    export B P SRC tmp
}

# usage FRAGMENT ARG...: dsql-proxy ARG... is a usage error (exit 2) whose
# message has FRAGMENT (fixed text); needs no upstream.
usage() {
    frag=$1; shift
    err=$("$P" "$@" 2>&1 >/dev/null); st=$?
    if [ "$st" -eq 2 ] && echo "$err" | grep -qF -- "$frag"; then pass "usage: $frag"
    else bad "usage $*: exit $st, '$err'"; fi
}

# run_inner: dsql-local started as gw and its environment taken, then
# $tmp/inner.sh run in $tmp, 300 s at the most.
run_inner() {
    start_local gw
    use_local gw
    (cd "$tmp" && timeout 300 sh "$tmp/inner.sh" 2>&1) || bad "inner tests (exit $?, 124 if they ran over 300 s)"
}

# ---- for inner.sh ----

# has TEXT PATTERN: a line of TEXT matches PATTERN (grep's basic regex)
has() { printf '%s\n' "$1" | grep -q -- "$2"; }
# has_text TEXT FRAGMENT: TEXT has FRAGMENT, as fixed text
has_text() { printf '%s\n' "$1" | grep -qF -- "$2"; }

# start_proxy NAME OPTION...: dsql-proxy OPTION... in the background, its
# stdout in $tmp/NAME.out, stderr in $tmp/NAME.err, pid in $tmp/NAME.pid;
# returns once it is ready (fails, showing its log, if it never is). The
# log is emptied first: a name used before still holds its "ready on",
# which the wait could read before the new proxy's redirection empties it.
start_proxy() {
    name=$1; shift
    : >"$tmp/$name.err"
    "$P" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    echo $! >"$tmp/$name.pid"
    until_line "$tmp/$name.err" "ready on" || { cat "$tmp/$name.err"; return 1; }
}
# stop_proxy NAME: SIGTERM, then its exit status
stop_proxy() { kill "$(cat "$tmp/$1.pid")" 2>/dev/null; wait "$(cat "$tmp/$1.pid")"; }

# a client as in a plain shell: not pointed at dsql-local's gateway
psql() { env -u PGHOSTADDR -u PGSSLMODE -u PGSSLROOTCERT -u PGPORT psql -X "$@"; }
# the same as a command, so `$plain_psql ... &` leaves psql's own pid in $!
# (a function in the background is a subshell: killing it leaves psql)
plain_psql="env -u PGHOSTADDR -u PGSSLMODE -u PGSSLROOTCERT -u PGPORT psql -X"

# running SQL: one query that starts with SQL is in pg_stat_activity, asked
# straight at the gateway with a fresh token; wait_running SQL: until it is
# (a loaded machine starts psql slowly), 60 s at the most
running() {
    [ "$(PGPASSWORD=$("$B/dsql-token") command psql -X -Atc \
        "select count(*) from pg_stat_activity where query like '$1%'" 2>/dev/null)" = 1 ]
}
wait_running() { until_true running "$1"; }

# raw ARG...: the script's own protocol client, $tmp/raw.py
raw() { python3 "$tmp/raw.py" "$@"; }

# no_sanitizer_reports: the check that no proxy's log ($tmp/*.err) has a
# sanitizer report. Under SANITIZE builds, run alone, test/run-tests also
# sends reports to files of its own and fails there.
no_sanitizer_reports() {
    lib_found=$(grep -l 'Sanitizer\|runtime error:' "$tmp"/*.err)
    check "no sanitizer report in any proxy's log ($lib_found)" test -z "$lib_found"
}

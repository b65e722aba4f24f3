#!/bin/sh
# dsql-local's injected faults (issue 17): write commits that fail with
# OC000, commits applied and then the connection cut, refused logins,
# added latency. Each fault at rate 1, so every eligible commit shows it.
. "$(dirname "$0")/dsql-local-lib.sh"
need_pg15 psql
make_tmp
stop_on_exit c d r l
out=$("$L" start --conflict-rate 1.5 2>&1; echo "st=$?")
case $out in *"conflict-rate '1.5' is not a probability in 0..1"*st=2) pass "a bad rate is a usage error" ;;
*) bad "bad rate: $out" ;; esac

start_local c --conflict-rate 1 &
p1=$!
start_local d --drop-after-commit 1 &
p2=$!
start_local r --refuse-connections 1 &
p3=$!
start_local l --latency 300 &
p4=$!
for p in $p1 $p2 $p3 $p4; do wait $p || exit 1; done

sql() { psql -X -q -At -v VERBOSITY=verbose "$@" 2>&1; }

( # --conflict-rate 1
    use_local c
    sql -c "CREATE TABLE acct (id int PRIMARY KEY, v int)" >/dev/null
    out=$(sql -c "INSERT INTO acct VALUES (1, 0)")
    case $out in *"40001: mutation conflicts with another transaction, retry as needed (OC000)"*)
        pass "conflict-rate 1: an autocommit write fails with OC000" ;;
    *) bad "autocommit write: $out" ;; esac
    out=$(sql -c "BEGIN" -c "UPDATE acct SET v = 1" -c "SELECT 'in'" -c "COMMIT" -c "SELECT 'after'")
    case $out in *"in"*"40001: mutation conflicts with another transaction, retry as needed (OC000)"*after)
        pass "conflict-rate 1: a COMMIT of a write transaction fails with OC000, the session goes on" ;;
    *) bad "explicit commit: $out" ;; esac
    out=$(sql -c "BEGIN" -c "SELECT count(*) FROM acct" -c "COMMIT")
    [ "$out" = 0 ] && pass "a read-only transaction commits" || bad "read-only: $out"
    out=$(sql -c "SELECT count(*) FROM acct")
    [ "$out" = 0 ] && pass "a conflicted write left nothing" || bad "rows after conflicts: $out"
    exit $fail
) || fail=1

( # --drop-after-commit 1
    use_local d
    sql -c "CREATE TABLE acct (id int PRIMARY KEY, v int)" >/dev/null
    out=$(sql -c "INSERT INTO acct VALUES (1, 0)" -c "SELECT 'never'")
    case $out in *never*) bad "drop after an autocommit write: $out" ;;
    *"server closed the connection"*|*"connection to server was lost"*)
        pass "drop-after-commit 1: the connection is cut after an autocommit write" ;;
    *) bad "drop after an autocommit write: $out" ;; esac
    out=$(sql -c "BEGIN" -c "UPDATE acct SET v = 7 WHERE id = 1" -c "COMMIT" -c "SELECT 'never'")
    case $out in *never*) bad "drop after COMMIT: $out" ;;
    *"server closed the connection"*|*"connection to server was lost"*)
        pass "drop-after-commit 1: the connection is cut after COMMIT" ;;
    *) bad "drop after COMMIT: $out" ;; esac
    out=$(sql -c "SELECT id, v FROM acct")
    [ "$out" = "1|7" ] && pass "both commits were applied (the ambiguous commit)" || bad "after drops: $out"
    exit $fail
) || fail=1

( # --refuse-connections 1
    . "$tmp/r.env"
    out=$(PGPASSWORD=$("$T" --hostname "$PGHOST") psql -X -At -c "select 1" 2>&1)
    case $out in *"Unable to accept connection, rate exceeded."*)
        pass "refuse-connections 1: a login is refused with the 53400 text" ;;
    *) bad "refused login: $out" ;; esac
    exit $fail
) || fail=1

( # --latency 300: five round trips take at least 1.5 s
    use_local l
    out=$(psql -X -At -c '\timing on' -c "select 1" -c "select 2" -c "select 3" -c "select 4" \
        -c "select 5" 2>&1)
    ms=$(echo "$out" | sed -n 's/^Time: \([0-9]*\)\..*/\1/p' | awk '{s += $1} END {print s + 0}')
    [ "$ms" -ge 1500 ] && pass "latency 300: five queries took $ms ms (at least 1500)" ||
        bad "latency: $ms ms: $out"
    exit $fail
) || fail=1

( # dsql-local set: faults changed while running
    . "$tmp/r.env"
    out=$("$L" set refuse-connections 0 --state-dir "$tmp/r" 2>&1; echo "st=$?")
    [ "$out" = "st=0" ] && pass "set refuse-connections 0 is answered" || bad "set: $out"
    out=$(PGPASSWORD=$("$T" --hostname "$PGHOST") psql -X -At -c "select 1" 2>&1)
    [ "$out" = 1 ] && pass "after set refuse-connections 0 logins work" || bad "after set: $out"
    export PGPASSWORD="$("$T" --hostname "$PGHOST")"
    sql -c "CREATE TABLE t (x int PRIMARY KEY)" >/dev/null
    "$L" set conflict-rate 1 --state-dir "$tmp/r" || bad "set conflict-rate 1"
    out=$(sql -c "INSERT INTO t VALUES (1)")
    case $out in *"(OC000)"*) pass "set conflict-rate 1: the next write conflicts" ;;
    *) bad "after set conflict-rate 1: $out" ;; esac
    out=$("$L" set conflict-rate lots --state-dir "$tmp/r" 2>&1; echo "st=$?")
    case $out in *"conflict-rate 'lots' is not a probability"*st=2) pass "set with a bad value: usage error" ;;
    *) bad "set bad value: $out" ;; esac
    out=$("$L" set colour blue --state-dir "$tmp/r" 2>&1; echo "st=$?")
    case $out in *"unknown fault 'colour'"*st=2) pass "set of an unknown fault: usage error" ;;
    *) bad "set unknown: $out" ;; esac
    out=$("$L" set latency 5 --state-dir "$tmp/nothing-here" 2>&1; echo "st=$?")
    case $out in *st=1) pass "set without a server: error ($(echo "$out" | head -1))" ;;
    *) bad "set without a server: $out" ;; esac
    exit $fail
) || fail=1

[ $fail -eq 0 ] && echo "all dsql-local fault checks passed"
exit $fail

#!/bin/sh
# dsql-local's optimistic concurrency (doc/DSQL-LOCAL.md, "Concurrency
# control in Aurora DSQL", "DDL and distributed transactions in Aurora
# DSQL"), with two real sessions through the gateway: a writer never waits
# for another, a conflict fails the transaction's COMMIT with 40001 OC000,
# and a transaction older than a committed DDL fails with OC001. Sessions
# are ordered with files, never with sleeps.
. "$(dirname "$0")/dsql-local-lib.sh"
need_pg15 psql
make_tmp
trap '"$L" stop --state-dir "$tmp/a" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
if ! "$L" start --state-dir "$tmp/a" >"$tmp/a.env" 2>"$tmp/a.err"; then
    echo "FAIL dsql-local start: $(cat "$tmp/a.err")"
    exit 1
fi
. "$tmp/a.env"
PGPASSWORD=$("$T" --hostname "$PGHOST")
export PGPASSWORD

OC000="40001: mutation conflicts with another transaction, retry as needed (OC000)"
OC001="40001: schema has been updated by another transaction, please retry: (OC001)"
sql() { psql -X -q -At -v VERBOSITY=verbose "$@" 2>&1; }
# psql meta-command that waits (at most 30 s) until file $1 exists
await() { printf '\\! i=0; while [ ! -e %s ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n' "$tmp/$1"; }
# session NAME: the script $tmp/NAME.sql runs in the background (its pid
# in $spid), its output in $tmp/NAME.out
session() {
    psql -X -q -At -v VERBOSITY=verbose -f "$tmp/$1.sql" >"$tmp/$1.out" 2>&1 &
    spid=$!
}
# waits (at most 30 s) until file $1 exists
until_file() { i=0; while [ ! -e "$tmp/$1" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done; }

sql -c "CREATE TABLE acct (id int PRIMARY KEY, v int)" >/dev/null
sql -c "INSERT INTO acct VALUES (1, 0), (2, 0), (3, 0)" >/dev/null

# ---- writers never wait; the conflict is reported at COMMIT too ----
{ echo "BEGIN;"; echo "UPDATE acct SET v = 1 WHERE id = 1;"; echo "\\! touch $tmp/a-wrote"
  await b-done; echo "COMMIT;"; } >"$tmp/a.sql"
session a
pa=$spid
until_file a-wrote
# session a holds row 1 until b is done: b must not wait for it
timeout 20 psql -X -q -At -v VERBOSITY=verbose -c "BEGIN" -c "UPDATE acct SET v = 2 WHERE id = 1" \
    -c "SELECT 'b-after-update'" -c "COMMIT" -c "SELECT 'b-idle'" >"$tmp/b.out" 2>&1
st=$?
touch "$tmp/b-done"
wait $pa
[ $st -ne 124 ] && pass "a writer does not wait for another's uncommitted row" ||
    bad "the second writer waited for the first (timeout)"
out=$(cat "$tmp/b.out")
case $out in *"$OC000"*"$OC000"*b-idle)
    pass "the conflicted transaction's COMMIT fails with 40001 OC000, and the session goes on" ;;
*) bad "conflicted COMMIT: $out" ;; esac
out=$(sql -c "SELECT v FROM acct WHERE id = 1")
[ "$out" = 1 ] && pass "the first writer committed, the second changed nothing" || bad "row 1: $out"
out=$(sql -c "SHOW lock_timeout")
[ "$out" = 1ms ] && pass "lock_timeout is 1ms: a writer meeting a lock fails rather than waits" ||
    bad "lock_timeout: $out"

# ---- a write over a row committed after this transaction's snapshot ----
{ echo "BEGIN;"; echo "SELECT v FROM acct WHERE id = 2;"; echo "\\! touch $tmp/c-snap"
  await d-done; echo "UPDATE acct SET v = 30 WHERE id = 2;"; echo "COMMIT;"; echo "SELECT 'c-idle';"; } \
    >"$tmp/c.sql"
session c
pc=$spid
until_file c-snap
sql -c "UPDATE acct SET v = 40 WHERE id = 2" >"$tmp/d.out"
touch "$tmp/d-done"
wait $pc
out=$(cat "$tmp/c.out")
case $out in *"$OC000"*"$OC000"*c-idle)
    pass "a write over a newer committed row: OC000 at the statement and at COMMIT" ;;
*) bad "stale write: $out" ;; esac
out=$(sql -c "SELECT v FROM acct WHERE id = 2")
[ "$out" = 40 ] && pass "the first committer won" || bad "row 2: $out"

# ---- a transaction that met no conflict commits as usual ----
out=$(sql -c "BEGIN" -c "UPDATE acct SET v = 5 WHERE id = 3" -c "COMMIT" -c "SELECT v FROM acct WHERE id = 3")
[ "$out" = 5 ] && pass "a transaction without a conflict commits" || bad "plain commit: $out"

[ $fail -eq 0 ] && echo "all dsql-local concurrency checks passed"
exit $fail

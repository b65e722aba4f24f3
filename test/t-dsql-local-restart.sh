#!/bin/sh
# dsql-local restart (issue 17): every gateway (both regions') closes,
# cutting its connections, and listens again on the same port; the same
# environment (keys, CA file, names) works afterwards, the data is still
# there, faults set before the restart still apply. Sessions are ordered
# with files, never with sleeps.
. "$(dirname "$0")/dsql-local-lib.sh"
need_pg15 psql
make_tmp
stop_on_exit s

out=$("$L" restart --state-dir "$tmp/none" 2>&1; echo "st=$?")
case $out in *st=1) pass "restart with no server is an error: ${out%%
*}" ;; *) bad "restart of nothing: $out" ;; esac
out=$("$L" restart --state-dir "$tmp/none" extra 2>&1; echo "st=$?")
case $out in *"usage: dsql-local restart"*st=2) pass "restart takes no argument" ;;
*) bad "restart extra: $out" ;; esac

start_local s --regions us-east-1,us-east-2
use_local s
h2=${DSQL_LOCAL_HOSTS#*,}; p2=${DSQL_LOCAL_PORTS#*,}
sql() { psql -X -q -At -v VERBOSITY=verbose "$@" 2>&1; }
sql -c "CREATE TABLE kept (x int PRIMARY KEY)" >/dev/null
sql -c "INSERT INTO kept VALUES (1)" >/dev/null

# a session in an open transaction (with a write) across the restart
{ echo "BEGIN;"; echo "INSERT INTO kept VALUES (2);"; echo "\\! touch $tmp/open"
  await restarted
  echo "SELECT 'still here';"; echo "COMMIT;"; } >"$tmp/open.sql"
psql -X -q -At -f "$tmp/open.sql" >"$tmp/open.out" 2>&1 &
po=$!
until_file open
"$L" set conflict-rate 1 --state-dir "$tmp/s" || bad "set before restart"
if "$L" restart --state-dir "$tmp/s" 2>"$tmp/restart.err"; then
    pass "restart answered"
else
    bad "restart: $(cat "$tmp/restart.err")"
fi
touch "$tmp/restarted"
wait $po
out=$(cat "$tmp/open.out")
case $out in *"still here"*) bad "the open session survived the restart: $out" ;;
*"connection"*) pass "the restart cut the open session: $(echo "$out" | head -1)" ;;
*) bad "open session: $out" ;; esac
out=$(sql -c "SELECT string_agg(x::text, ',' ORDER BY x) FROM kept")
[ "$out" = 1 ] && pass "the database is kept; the cut transaction was rolled back" ||
    bad "rows after restart: $out"
out=$(sql -c "INSERT INTO kept VALUES (3)")
case $out in *"(OC000)"*) pass "the same port, token and CA work; a fault set before still applies" ;;
*) bad "after restart: $out" ;; esac
"$L" set conflict-rate 0 --state-dir "$tmp/s" || bad "set after restart"
out=$(PGHOST=$h2 PGPORT=$p2 PGPASSWORD=$("$T" --hostname "$h2") sql -c "INSERT INTO kept VALUES (4)" \
    -c "SELECT count(*) FROM kept")
[ "$out" = 2 ] && pass "region 2's gateway is back on its port, and set reaches it" ||
    bad "region 2 after restart: $out"
grep -q "gateways restarted" "$tmp/s/dsql-local.log" && pass "the log says so" ||
    bad "log: $(tail -3 "$tmp/s/dsql-local.log")"
"$L" restart --state-dir "$tmp/s" && out=$(sql -c "SELECT count(*) FROM kept") &&
    [ "$out" = 2 ] && pass "a second restart works too" || bad "second restart: $out"

[ $fail -eq 0 ] && echo "all dsql-local restart checks passed"
exit $fail

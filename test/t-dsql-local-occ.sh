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
stop_on_exit a
start_local a
use_local a

OC000="40001: mutation conflicts with another transaction, retry as needed (OC000)"
OC001="40001: schema has been updated by another transaction, please retry: (OC001)"
sql() { psql -X -q -At -v VERBOSITY=verbose "$@" 2>&1; }
# session NAME: the script $tmp/NAME.sql runs in the background (its pid
# in $spid), its output in $tmp/NAME.out
session() {
    psql -X -q -At -v VERBOSITY=verbose -f "$tmp/$1.sql" >"$tmp/$1.out" 2>&1 &
    spid=$!
}

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

# ---- a transaction older than a committed DDL: OC001 ----
sql -c "CREATE TABLE other (id int PRIMARY KEY)" >/dev/null
# e: begins, waits for the DDL on acct, then uses acct
{ echo "BEGIN;"; echo "SELECT 1;"; echo "\\! touch $tmp/e-began"; await ddl-done
  echo "SELECT count(*) FROM acct;"; echo "COMMIT;"; echo "SELECT 'e-idle';"; } >"$tmp/e.sql"
session e
pe=$spid
# f: begins as well, but then uses only a table the DDL did not touch
{ echo "BEGIN;"; echo "SELECT 1;"; echo "\\! touch $tmp/f-began"; await ddl-done
  echo "INSERT INTO other VALUES (1);"; echo "COMMIT;"; echo "SELECT 'f-idle';"; } >"$tmp/f.sql"
session f
pf=$spid
until_file e-began
until_file f-began
# the DDL commits while e and f are open (they hold no lock on acct yet)
sql -c "ALTER TABLE acct ADD COLUMN note text" >"$tmp/ddl.out"
touch "$tmp/ddl-done"
wait $pe $pf
[ -s "$tmp/ddl.out" ] && bad "the DDL's client saw: $(cat "$tmp/ddl.out")" ||
    pass "the DDL's client sees no trace of the gateway's bookkeeping"
out=$(cat "$tmp/e.out")
case $out in *"$OC001"*"$OC001"*e-idle)
    pass "a transaction begun before a committed ALTER TABLE that then uses the table: OC001 at that statement and at COMMIT, the session is idle after" ;;
*) bad "stale catalog: $out (DDL: $(cat "$tmp/ddl.out"))" ;; esac
out=$(cat "$tmp/f.out")
case $out in *OC00*) bad "a table the DDL did not touch: $out" ;;
*f-idle) pass "an equally old transaction that uses only other tables commits" ;;
*) bad "other table: $out" ;; esac
out=$(sql -c "SELECT count(*) FROM other")
[ "$out" = 1 ] && pass "its write was committed" || bad "other rows: $out"
out=$(sql -c "BEGIN" -c "SELECT count(*) FROM acct" -c "COMMIT")
[ "$out" = 3 ] && pass "a transaction begun after the DDL commits" || bad "after DDL: $out"
# CREATE INDEX ASYNC (through the job call) changes the table too
{ echo "BEGIN;"; echo "SELECT 1;"; echo "\\! touch $tmp/g-began"; await idx-done
  echo "UPDATE acct SET v = v WHERE id = 3;"; echo "COMMIT;"; echo "SELECT 'g-idle';"; } >"$tmp/g.sql"
session g
pg=$spid
until_file g-began
sql -c "CREATE INDEX ASYNC acct_v ON acct (v)" >"$tmp/idx.out"
touch "$tmp/idx-done"
wait $pg
out=$(cat "$tmp/g.out")
case $out in *"$OC001"*"$OC001"*g-idle) pass "an index created meanwhile: OC001 too" ;;
*) bad "after CREATE INDEX ASYNC: $out (index: $(cat "$tmp/idx.out"))" ;; esac
# occ_case DESCRIPTION STATEMENT MODE OTHER WANT: test/occ_client begins a
# transaction, runs STATEMENT through the extended protocol and waits while
# another session runs OTHER (none when empty); then it COMMITs (MODE
# extended-commit: through the extended protocol too, empty: a simple
# COMMIT). What it reports must match the case pattern WANT (the SQLSTATE
# messages hold no pattern characters).
occ_case() {
    rm -f "$tmp/x-began" "$tmp/x-go" "$tmp/x-other.out"
    "$B/test/occ_client" "$tmp/x-began" "$tmp/x-go" "$2" ${3:+"$3"} >"$tmp/x.out" 2>&1 &
    occ_pid=$!
    until_file x-began
    [ -z "$4" ] || sql -c "$4" >"$tmp/x-other.out"
    touch "$tmp/x-go"
    wait $occ_pid
    out=$(cat "$tmp/x.out")
    case $out in
    $5) pass "$1" ;;
    *) bad "$1: $out (other session: $(cat "$tmp/x-other.out" 2>/dev/null))" ;;
    esac
}
if [ -x "$B/test/occ_client" ]; then
    # a simple COMMIT after an extended-protocol statement (not checked itself)
    occ_case "an extended-protocol statement, then a simple COMMIT: the COMMIT fails with OC001 and ends the transaction" \
        "SELECT count(*) FROM acct" "" "ALTER TABLE acct ADD COLUMN note2 text" \
        "*statement: ok*commit: error $OC001*after: idle"
    # the COMMIT through the extended protocol too (JDBC, pgx): checked the same
    occ_case "an extended-protocol COMMIT of a transaction older than the DDL fails with OC001 and ends it" \
        "SELECT count(*) FROM acct" extended-commit "ALTER TABLE acct ADD COLUMN note3 text" \
        "*statement: ok*commit: error $OC001*after: idle"
    out=$(sql -c "SELECT count(*) FROM acct")
    [ "$out" = 3 ] && pass "the session after it works" || bad "after extended OC001: $out"
    occ_case "an extended-protocol COMMIT after a conflict fails with OC000" \
        "UPDATE acct SET v = 50 WHERE id = 3" extended-commit "UPDATE acct SET v = 60 WHERE id = 3" \
        "*statement: error $OC000*commit: error $OC000*after: idle"
    occ_case "an extended-protocol COMMIT with nothing in its way commits" \
        "UPDATE acct SET v = 70 WHERE id = 3" extended-commit "" "*commit: ok*after: idle"
    out=$(sql -c "SELECT v FROM acct WHERE id = 3")
    [ "$out" = 70 ] && pass "its write is there" || bad "after the clean extended COMMIT: row 3 is $out"
else
    bad "$B/test/occ_client is missing (make check builds it)"
fi
out=$(sql -c "BEGIN" -c "SELECT 1" -c "ROLLBACK" -c "SELECT 'rolled back'")
case $out in *"rolled back") pass "ROLLBACK is never checked" ;; *) bad "rollback: $out" ;; esac

[ $fail -eq 0 ] && echo "all dsql-local concurrency checks passed"
exit $fail

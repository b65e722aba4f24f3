#!/bin/sh
# CREATE INDEX ASYNC the way DSQL answers it ("Asynchronous indexes in
# Aurora DSQL"): a job_id row, the job in sys.jobs, CALL sys.wait_for_job
# returning succeeded; through the simple and the extended protocol; no job
# for a transaction rolled back or for a table's own key index.
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
sql() { psql -X -q -At -v VERBOSITY=verbose "$@" 2>&1; }

sql -c "CREATE TABLE items (id int PRIMARY KEY, v int, w int)" >/dev/null
out=$(sql -c "SELECT count(*) FROM sys.jobs")
[ "$out" = 0 ] && pass "a table's key index is no job" || bad "jobs after CREATE TABLE: $out"

out=$(psql -X -A -c "CREATE INDEX ASYNC items_v ON items (v)" 2>&1)
job=$(echo "$out" | sed -n 2p)
case $out in "job_id
"[0-9a-f]*"
(1 row)") pass "CREATE INDEX ASYNC answers one row, column job_id ($job)" ;;
*) bad "CREATE INDEX ASYNC answered: $out" ;; esac
out=$(sql -c "SELECT status, job_type, object_name, details IS NULL FROM sys.jobs WHERE job_id = '$job'")
[ "$out" = "completed|INDEX_BUILD|public.items_v|t" ] &&
    pass "sys.jobs shows it: completed, INDEX_BUILD, public.items_v" || bad "sys.jobs: $out"
out=$(sql -c "SELECT indexdef FROM pg_indexes WHERE indexname = 'items_v'")
[ "$out" = "CREATE INDEX items_v ON public.items USING btree (v)" ] && pass "the index exists" ||
    bad "index: $out"
out=$(psql -X -A -c "CALL sys.wait_for_job('$job')" 2>&1)
[ "$out" = "succeeded
t
(1 row)" ] && pass "CALL sys.wait_for_job answers succeeded = true" || bad "wait_for_job: $out"
out=$(sql -c "CALL sys.wait_for_job('nosuchjob')")
case $out in *"42704: job nosuchjob not found"*) case $out in *CONTEXT*) bad "context shown: $out" ;;
    *) pass "an unknown job is an error (42704)" ;; esac ;;
*) bad "unknown job: $out" ;; esac

out=$(sql -c "BEGIN" -c "CREATE UNIQUE INDEX ASYNC items_w ON items (w)" -c "ROLLBACK" \
    -c "SELECT count(*) FROM sys.jobs WHERE object_name = 'public.items_w'" \
    -c "SELECT count(*) FROM pg_indexes WHERE indexname = 'items_w'")
case $out in *"
0
0") pass "a rolled-back CREATE INDEX ASYNC leaves neither job nor index" ;;
*) bad "rolled back: $out" ;; esac
out=$(sql -c "BEGIN" -c "CREATE INDEX ASYNC items_vw ON items (v, w)" -c "INSERT INTO items VALUES (1, 1, 1)")
case $out in *"0A000: ddl and dml are not supported in the same transaction"*)
    pass "DML after CREATE INDEX ASYNC refused with DSQL's text" ;;
*) bad "DML after index: $out" ;; esac

printf 'CREATE INDEX ASYNC items_ext ON items (w)\n' >"$tmp/ext.sql"
/usr/lib/postgresql/15/bin/pgbench -n -t 1 -M extended -f "$tmp/ext.sql" >"$tmp/ext.out" 2>&1
out=$(sql -c "SELECT status FROM sys.jobs WHERE object_name = 'public.items_ext'")
[ "$out" = completed ] && pass "through the extended protocol too" ||
    bad "extended protocol: $out $(cat "$tmp/ext.out")"
out=$(sql -c "CREATE INDEX ASYNC items_a ON items (v); SELECT 'second'")
case $out in *second*) pass "in a text of several statements ASYNC is only dropped" ;;
*) bad "two statements: $out" ;; esac

[ $fail -eq 0 ] && echo "all dsql-local CREATE INDEX ASYNC checks passed"
exit $fail

#!/bin/sh
# dsql-local's DSQL fidelity (doc/DSQL-LOCAL.md): unsupported features
# refused with SQLSTATE 0A000, one DDL statement per transaction and never
# with DML, CREATE INDEX only as ASYNC, conflicts as OC000/OC001 with
# SQLSTATE 40001 and no lock waits, and --postgres-compat turning it off.
. "$(dirname "$0")/dsql-local-lib.sh"
need_pg15 psql
make_tmp
stop_on_exit a c
start_local a
use_local a

sql() { psql -X -q -At -v VERBOSITY=verbose -v ON_ERROR_STOP=1 "$@" 2>&1; }
# description, expected fragment of the output, SQL
expect() {
    out=$(sql -c "$3")
    case $out in
    *"$2"*) pass "$1" ;;
    *) bad "$1: wanted '$2', got: $out" ;;
    esac
}
refused() { expect "$1 refused (0A000)" "ERROR:  0A000: $2 not supported" "$3"; }
allowed() { # description, SQL: no error
    out=$(sql -c "$2")
    case $out in *ERROR*) bad "$1: $out" ;; *) pass "$1" ;; esac
}

sql -c "CREATE TABLE base (id int PRIMARY KEY, v int)" >/dev/null
sql -c "INSERT INTO base VALUES (1, 0), (2, 0)" >/dev/null

# ---- Unsupported PostgreSQL features in Aurora DSQL ----
refused "temporary table" "temporary tables" "CREATE TEMP TABLE tt (x int)"
refused "trigger" "CREATE TRIGGER" \
    "CREATE TRIGGER tr AFTER INSERT ON base FOR EACH ROW EXECUTE FUNCTION pg_catalog.now()"
refused "sequence" "CREATE SEQUENCE" "CREATE SEQUENCE s"
refused "serial column (a sequence)" "sequences (serial, identity)" "CREATE TABLE ser (x serial)"
refused "partitioned table" "partitions" "CREATE TABLE part (x int) PARTITION BY RANGE (x)"
refused "tablespace" "CREATE TABLESPACE" "CREATE TABLESPACE ts LOCATION '/nonexistent'"
refused "PL/pgSQL function" "functions in languages other than SQL are" \
    "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN 1; END'"
refused "DO block (PL/pgSQL)" "PL/pgSQL (DO)" "DO \$\$BEGIN END\$\$"
refused "extension" "CREATE EXTENSION" "CREATE EXTENSION pgcrypto"
refused "foreign key" "foreign keys" "CREATE TABLE child (id int PRIMARY KEY, b int REFERENCES base)"
refused "exclusion constraint" "exclusion constraints" \
    "CREATE TABLE ex (x int, EXCLUDE USING btree (x WITH =))"
refused "TRUNCATE" "TRUNCATE" "TRUNCATE base"
refused "SAVEPOINT" "SAVEPOINT" "BEGIN; SAVEPOINT s; COMMIT"
refused "VACUUM" "VACUUM" "VACUUM base"
refused "ALTER SYSTEM" "ALTER SYSTEM" "ALTER SYSTEM SET work_mem = '8MB'"
refused "CREATE DATABASE" "CREATE DATABASE" "CREATE DATABASE other"
refused "CREATE TABLE AS" "CREATE TABLE AS" "CREATE TABLE copy AS SELECT * FROM base"
refused "SELECT INTO" "CREATE TABLE AS" "SELECT * INTO copy2 FROM base"
refused "INHERITS" "INHERITS" "CREATE TABLE kid (y int) INHERITS (base)"
refused "COLLATE in CREATE TABLE" "COLLATE in CREATE TABLE" "CREATE TABLE coll (x text COLLATE \"POSIX\")"
refused "materialized view" "CREATE MATERIALIZED VIEW" "CREATE MATERIALIZED VIEW mv AS SELECT 1"
refused "CREATE TYPE" "CREATE TYPE" "CREATE TYPE pair AS (a int, b int)"
expect "a refusal carries no PL/pgSQL context" "0A000: TRUNCATE not supported
LOCATION" "TRUNCATE base"
allowed "SQL functions are allowed" "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS 'SELECT 1'"
expect "the keyword inside a string is not a statement" "savepoint; truncate" "SELECT 'savepoint; truncate'"
expect "one database, UTF-8, C collation" "postgres|UTF8|C" \
    "SELECT datname, pg_encoding_to_char(encoding), datcollate FROM pg_database WHERE datname = current_database()"
out=$(sql -c "SELECT count(*) FROM base")
[ "$out" = 2 ] && pass "refused statements changed nothing (TRUNCATE left 2 rows)" || bad "rows after TRUNCATE: $out"

# the extended protocol (Parse) is checked too
printf 'TRUNCATE base\n' >"$tmp/trunc.sql"
out=$(/usr/lib/postgresql/15/bin/pgbench -n -t 1 -M extended -f "$tmp/trunc.sql" 2>&1)
case $out in *"TRUNCATE not supported"*) pass "TRUNCATE through the extended protocol refused" ;;
*) bad "extended-protocol TRUNCATE: $out" ;; esac

# ---- DDL and distributed transactions in Aurora DSQL ----
expect "two DDL statements in one transaction refused" \
    "0A000: only one ddl statement is supported in a transaction" \
    "BEGIN; CREATE TABLE d1 (x int PRIMARY KEY); CREATE TABLE d2 (x int PRIMARY KEY); COMMIT"
expect "DML then DDL refused" "0A000: ddl and dml are not supported in the same transaction" \
    "BEGIN; INSERT INTO base VALUES (3, 0); CREATE TABLE d3 (x int PRIMARY KEY); COMMIT"
expect "DDL then DML refused" "0A000: ddl and dml are not supported in the same transaction" \
    "BEGIN; CREATE TABLE d4 (x int PRIMARY KEY); INSERT INTO base VALUES (4, 0); COMMIT"
expect "DDL and DML in one implicit transaction refused" \
    "ddl and dml are not supported in the same transaction" \
    "CREATE TABLE d5 (x int PRIMARY KEY); INSERT INTO d5 VALUES (1)"
out=$(sql -c "SELECT count(*) FROM pg_class WHERE relname IN ('d1','d2','d3','d4','d5')" \
    -c "SELECT count(*) FROM base")
[ "$out" = "0
2" ] && pass "refused transactions left nothing behind" || bad "after refused DDL: $out"
allowed "one DDL statement in its own transaction" "BEGIN; CREATE TABLE d6 (x int PRIMARY KEY); COMMIT"
allowed "then DML in the next one" "BEGIN; INSERT INTO d6 VALUES (1); COMMIT"
expect "a read after DDL is fine" "0" "BEGIN; CREATE TABLE d7 (x int PRIMARY KEY); SELECT count(*) FROM base WHERE id < 0; COMMIT"
expect "CREATE INDEX without ASYNC refused" "0A000: CREATE INDEX without ASYNC not supported" \
    "CREATE INDEX base_v ON base (v)"
expect "CREATE INDEX ASYNC builds the index" "base_v_async" \
    "CREATE INDEX ASYNC base_v_async ON base (v); SELECT indexname FROM pg_indexes WHERE indexname = 'base_v_async'"

# ---- Concurrency control in Aurora DSQL ----
# (sessions ordered with files, not with sleeps a loaded machine outlasts)
{ printf 'BEGIN;\nSELECT v FROM base WHERE id = 1;\n\\! touch %s/snap\n' "$tmp"; await wrote
  printf 'UPDATE base SET v = v + 1 WHERE id = 1;\nCOMMIT;\n'; } |
    psql -X -q -v VERBOSITY=verbose >"$tmp/occ.out" 2>&1 &
occ=$!
until_file snap
sql -c "UPDATE base SET v = v + 10 WHERE id = 1" >/dev/null
touch "$tmp/wrote"
wait $occ
grep -q "40001: mutation conflicts with another transaction, retry as needed (OC000)" "$tmp/occ.out" &&
    pass "write-write conflict: 40001 with OC000" || bad "conflict: $(cat "$tmp/occ.out")"
# a second writer does not wait for the first to finish: the first holds
# its row until the second has its answer (or gives up after 30 s and says so)
{ printf 'BEGIN;\nUPDATE base SET v = v + 1 WHERE id = 2;\n\\! touch %s/held\n' "$tmp"; await answered
  printf '\\! [ -e %s/answered ] || touch %s/gave-up\nCOMMIT;\n' "$tmp" "$tmp"; } |
    psql -X -q >/dev/null 2>&1 &
holder=$!
until_file held
out=$(sql -c "UPDATE base SET v = v + 10 WHERE id = 2")
[ -e "$tmp/gave-up" ] && waited=1 || waited=0
touch "$tmp/answered"
wait $holder
case $waited$out in 0*"40001: mutation conflicts with another transaction, retry as needed (OC000)"*)
    pass "no lock wait: the second writer fails with OC000 while the first still holds the row" ;;
1*) bad "second writer waited until the first gave up: $out" ;;
*) bad "second writer: $out" ;; esac
# schema change while a transaction reads the table: others get OC001.
# The reader holds the table until the third session has its answer; the
# ALTER waits for the reader meanwhile (its lock shown not granted).
{ printf 'BEGIN;\nSELECT count(*) FROM base;\n\\! touch %s/read\n' "$tmp"; await asked
  printf 'COMMIT;\n'; } | psql -X -q >/dev/null 2>&1 &
reader=$!
until_file read
sql -c "ALTER TABLE base ADD COLUMN w int" >"$tmp/alter.out" &
alter=$!
until_sql 1 "SELECT count(*) FROM pg_locks WHERE relation = 'base'::regclass AND NOT granted"
out=$(sql -c "SELECT count(*) FROM base")
touch "$tmp/asked"
wait $alter $reader
case $out in *"40001: schema has been updated by another transaction, please retry: (OC001)"*)
    pass "a table whose schema is changing: 40001 with OC001" ;;
*) bad "during ALTER: $out" ;; esac
out=$(sql -c "SELECT count(*) FROM information_schema.columns WHERE table_name = 'base' AND column_name = 'w'")
[ "$out" = 1 ] && pass "the schema change itself went through" || bad "ALTER: $out $(cat "$tmp/alter.out")"

# ---- --postgres-compat: plain PostgreSQL ----
if "$L" start --postgres-compat --state-dir "$tmp/c" >"$tmp/c.env" 2>"$tmp/c.err"; then
    out=$( (. "$tmp/c.env"; PGPASSWORD=$("$T" --hostname "$PGHOST") psql -X -q -At -c \
        "CREATE TEMP TABLE t (x serial); BEGIN; SAVEPOINT s; INSERT INTO t DEFAULT VALUES; COMMIT; SELECT count(*) FROM t" 2>&1) )
    [ "$out" = 1 ] && pass "--postgres-compat: temporary tables, sequences, SAVEPOINT work" ||
        bad "--postgres-compat: $out"
else
    bad "start --postgres-compat: $(cat "$tmp/c.err")"
fi

[ $fail -eq 0 ] && echo "all dsql-local fidelity checks passed"
exit $fail

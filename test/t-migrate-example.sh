#!/bin/sh
# examples/migrate.c under dsql-local: three DDL steps through
# dsql_pq_exec_with_retry, each in autocommit; a second run (every step
# idempotent) succeeds too, and the table then has the migrated columns.
set -u
B=${B:-build}
for p in "$B/dsql-local" "$B/dsql-token" "$B/examples/migrate"; do
    [ -x "$p" ] || { echo "FAIL $p is missing (make check builds it)"; exit 1; }
done
export B
# shellcheck disable=SC2016
"$B/dsql-local" run -- sh -c '
fail=0
for run in first second; do
    if out=$("$B/examples/migrate" 2>/dev/null) &&
        [ "$(echo "$out" | grep -c "^step [123]: .* (1 attempt")" -eq 3 ]; then
        echo "ok   examples/migrate, $run run: 3 steps"
    else
        echo "FAIL examples/migrate, $run run: $out"; fail=1
    fi
done
if command -v psql >/dev/null 2>&1; then
    cols=$(PGPASSWORD=$("$B/dsql-token" --hostname "$PGHOST" 2>/dev/null) psql -X -At -c \
        "select string_agg(column_name::text, \$\$,\$\$ order by column_name) from information_schema.columns where table_name = \$\$example_orders\$\$" 2>&1)
    if [ "$cols" = "customer,id,placed_at,status,total" ]; then
        echo "ok   example_orders has the migrated columns"
    else
        echo "FAIL example_orders columns: $cols"; fail=1
    fi
fi
exit $fail
'

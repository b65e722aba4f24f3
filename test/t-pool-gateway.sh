#!/bin/sh
# Pool against a gateway that cuts every connection after 2 s (DSQL does it
# after 1 h) while the pool's own max lifetime is 55 min: the pool must
# recover without surfacing errors (test_gateway_duration_limit).
set -u
B=${B:-build}
if [ ! -x "$B/dsql-local" ] || [ ! -x "$B/test/check_pool" ]; then
    echo "FAIL $B/dsql-local or $B/test/check_pool is missing (make check builds them)"
    exit 1
fi
# --postgres-compat: the harness sets up its tables with several DDL statements at once
exec "$B/dsql-local" run --postgres-compat --max-connection-duration 2 -- \
    env DSQL_POOL_GATEWAY_LIMIT_S=2 CK_RUN_CASE=gateway_limit "$B/test/check_pool"

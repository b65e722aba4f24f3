#!/bin/sh
# Pool against a gateway that cuts every connection after 3 s (DSQL does it
# after 1 h) while the pool's own max lifetime is 55 min: the pool must
# recover without surfacing errors (test_gateway_duration_limit). The test
# waits for each cut; a pass that a loaded machine made slower than the
# limit is run again, any failure sooner fails.
set -u
B=${B:-build}
if [ ! -x "$B/dsql-local" ] || [ ! -x "$B/test/check_pool" ]; then
    echo "FAIL $B/dsql-local or $B/test/check_pool is missing (make check builds them)"
    exit 1
fi
# --postgres-compat: the harness sets up its tables with several DDL statements at once
limit=3
exec "$B/dsql-local" run --postgres-compat --max-connection-duration $limit -- \
    env DSQL_POOL_GATEWAY_LIMIT_S=$limit CK_RUN_CASE=gateway_limit "$B/test/check_pool"

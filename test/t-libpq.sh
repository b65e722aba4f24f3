#!/bin/sh
# libpq adapter integration: real PostgreSQL behind dsql-local's TLS gateway
# (verify-full), then the examples. With CLUSTER_ENDPOINT set (and AWS
# credentials), the same suite runs against that real cluster instead.
set -u
B=${B:-build}
fail=0
if [ -n "${CLUSTER_ENDPOINT:-}" ]; then
    "$B/test/pq_integration" || fail=1
    exit $fail
fi
if [ ! -x "$B/dsql-local" ] || [ ! -x "$B/test/pq_integration" ]; then
    echo "FAIL $B/dsql-local or $B/test/pq_integration is missing (make check builds them)"
    exit 1
fi
"$B/dsql-local" run -- "$B/test/pq_integration" || fail=1
for ex in connect nonblocking-poll libuv-connect params; do
    if [ -x "$B/examples/$ex" ]; then
        if out=$("$B/dsql-local" run -- "$B/examples/$ex" 2>&1); then
            echo "ok   examples/$ex: $(echo "$out" | head -1)"
        else
            echo "FAIL examples/$ex: $out"; fail=1
        fi
    fi
done
exit $fail

#!/bin/sh
# examples/pool-transfers under dsql-local: four threads, a pool of four,
# conflicting transfers retried; every transfer commits, the total holds.
set -u
B=${B:-build}
if [ ! -x "$B/dsql-local" ] || [ ! -x "$B/examples/pool-transfers" ]; then
    echo "FAIL $B/dsql-local or $B/examples/pool-transfers is missing (make check builds them)"
    exit 1
fi
if out=$("$B/dsql-local" run -- "$B/examples/pool-transfers" 2>&1) &&
    echo "$out" | grep -q "400 committed, .* 0 failed; total balance 2000"; then
    echo "ok   examples/pool-transfers: $(echo "$out" | tail -1)"
else
    echo "FAIL examples/pool-transfers: $out"
    exit 1
fi

#!/bin/sh
# Fails every allocation of a dsql-local gateway login in turn (issue 9);
# see test/gateway_allocfail.c. Sanitizer builds test every 7th allocation:
# each run is a fresh process and they are several times slower.
set -u
B=${B:-build}
if [ ! -x "$B/test/gateway_allocfail" ]; then
    echo "FAIL $B/test/gateway_allocfail is missing (make check builds it)"
    exit 1
fi
stride=1
[ -n "${SANITIZE:-}" ] && stride=7
ALLOCFAIL_STRIDE=$stride exec "$B/test/gateway_allocfail"

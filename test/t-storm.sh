#!/bin/sh
# A short connection storm (bench/storm-bench.c): 20 connections at once
# through dsql-local, by 20 threads and by a pool warming up, with an
# explicit shared provider, a NULL provider and static credentials, the
# default chain on a loopback container endpoint that answers after 50 ms.
# storm-bench fails unless every storm connected all 20 and made exactly
# one credentials fetch (none with static credentials). Its timings are
# printed, not checked.
set -u
B=${B:-build}
if [ ! -x "$B/bench/storm-bench" ] || [ ! -x "$B/dsql-local" ]; then
    echo "FAIL $B/bench/storm-bench or $B/dsql-local is missing (make check builds them)"
    exit 1
fi
if DSQL_LOCAL="$B/dsql-local" "$B/bench/storm-bench" 20 1; then
    echo "ok   20-connection storms: one credentials fetch each"
else
    echo "FAIL a 20-connection storm did not make exactly one credentials fetch"
    exit 1
fi

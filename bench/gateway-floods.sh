#!/bin/sh
# The floods of issue 13 (items 2 and 4) against dsql-local with a 1024
# descriptor limit (soft and hard), full length; prints what it measured:
# logins made during each flood (successes, median and slowest latency),
# the gateway's CPU (utime+stime from /proc/PID/stat over the window) and
# how much its log grew. test/t-gateway-floods.sh asserts a shorter run.
#   B=build [IDLE=1100] [FLOOD_SECONDS=10] [RATE=10000] sh bench/gateway-floods.sh
# Loopback only.
set -eu
B=${B:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
IDLE=${IDLE:-1100}
SECONDS_=${FLOOD_SECONDS:-10}
RATE=${RATE:-10000}
tmp=$(mktemp -d)
chmod 755 "$tmp"
cleanup() {
    [ -f "$tmp/s/dsql-local.pid" ] && "$B/dsql-local" stop --state-dir "$tmp/s" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
unset PGPASSWORD PGSERVICE PGOPTIONS AWS_PROFILE AWS_SESSION_TOKEN

prlimit --nofile=1024:1024 -- "$B/dsql-local" start --state-dir "$tmp/s" >"$tmp/env"
. "$tmp/env"
pid=$(head -1 "$tmp/s/dsql-local.pid")
log=$tmp/s/dsql-local.log
PGPASSWORD=$("$B/dsql-token" --hostname "$PGHOST")
export PGPASSWORD
run() { "$B/test/gateway_flood" "$@" --pid "$pid" --log "$log" | sed 's/^RESULT /  /'; }

echo "== gateway: $(awk '/Max open files/ {print "descriptor limit " $4 " soft, " $5 " hard"}' /proc/"$pid"/limits); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 200 logins at once (no eviction wanted)"
run burst 200
echo "   evictions logged: $(grep -c 'closed before login' "$log" || true)"
echo "== $IDLE idle TCP connections held open ${SECONDS_} s, 5 logins meanwhile"
run idle "$IDLE" --logins 5 --hold "$SECONDS_"
echo "== the same, but each idle connection the gateway closes is reopened at once"
run idle "$IDLE" --logins 5 --hold "$SECONDS_" --reconnect
echo "== plain CancelRequests at $RATE/s for ${SECONDS_} s from one client, 2 threads logging in"
run cancel "$RATE" "$SECONDS_" --login-threads 2
"$B/dsql-local" stop --state-dir "$tmp/s"

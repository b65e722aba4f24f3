#!/bin/sh
# The pool across a REAL gateway restart (issue 7, faults): dsql-local is
# stopped and started again on the same port, with the same key table,
# hostname and state dir (so the same PGSSLROOTCERT path, though the CA in
# it is new: libpq reads the file on every connect) while worker threads
# keep running dsql_pq_pool_run_transaction. test/pool_restart.c does the
# restart and the checks. Loopback only; each step bounded by `timeout`
# against a hang, wide enough for a loaded machine under ASan (60 + 150 +
# 30 s at worst; typically 10-15 s, most of it dsql-local's initdb).
set -u
B=${B:-build}
if [ ! -x "$B/dsql-local" ] || [ ! -x "$B/test/pool_restart" ]; then
    echo "FAIL $B/dsql-local or $B/test/pool_restart is missing (make check builds them)"
    exit 1
fi
umask 077
dir=$(mktemp -d "${TMPDIR:-/tmp}/dsql-pool-restart.XXXXXX") || exit 1
chmod 711 "$dir" # run as root, PostgreSQL (user postgres) must reach state/pg
state=$dir/state
host=poolrestarttest0123456789a.dsql.us-east-1.on.aws
local_bin=$B/dsql-local
trap 'timeout 30 "$local_bin" stop --state-dir "$state" >/dev/null 2>&1; rm -rf "$dir"' EXIT
trap 'exit 1' INT TERM HUP
# our own key table, so the restarted gateway accepts the same credentials
printf 'AKIAPOOLRESTART00001 %s\n' "$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')" >"$dir/keys"
# A fixed port below the kernel's ephemeral range (32768-60999 by default),
# so no --port 0 listener or outgoing connection elsewhere can take it
# while the gateway is down; a few tries in case one is in use.
started=0
for try in 1 2 3 4 5; do
    port=$((20000 + $(od -An -tu2 -N2 /dev/urandom | tr -d ' ') % 10000))
    if timeout 60 "$local_bin" start --state-dir "$state" --port "$port" --keys "$dir/keys" \
            --hostname "$host" >"$dir/env"; then
        started=1
        break
    fi
done
if [ $started -ne 1 ]; then
    echo "FAIL dsql-local did not start"
    exit 1
fi
. "$dir/env"
ca1=$(cksum <"$PGSSLROOTCERT")
stop_cmd="timeout 30 '$local_bin' stop --state-dir '$state' >/dev/null"
start_cmd="timeout 60 '$local_bin' start --state-dir '$state' --port $PGPORT --keys '$dir/keys' --hostname $host >'$dir/env2'"
timeout 150 "$B/test/pool_restart" "$stop_cmd" "$start_cmd"
status=$?
if [ -s "$dir/env2" ]; then
    # the restart must give the same environment (port, hostname, CA path, keys)
    if cmp -s "$dir/env" "$dir/env2"; then
        echo "ok   the restarted dsql-local exports the same environment"
    else
        echo "FAIL the restarted dsql-local exports a different environment"
        status=1
    fi
    if [ "$(cksum <"$PGSSLROOTCERT")" != "$ca1" ]; then
        echo "ok   the restart made a new CA at the same path (the pool verified it)"
    else
        echo "note the restart kept the CA"
    fi
fi
exit $status

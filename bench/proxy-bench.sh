#!/bin/sh
# pgbench through dsql-proxy against pgbench straight to dsql-local's
# gateway (verify-full TLS, a token as the password), side by side in one
# run: select-only with persistent connections (-S), then a new connection
# per transaction (-S -C). Prints each run's tps and the ratios.
# Usage: B=build SECONDS_PER_RUN=10 CLIENTS=4 sh bench/proxy-bench.sh
set -eu
B=${B:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
export B
export SECS=${SECONDS_PER_RUN:-10} CLIENTS=${CLIENTS:-4}
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
export tmp
cat >"$tmp/inner.sh" <<'SH'
set -eu
tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1; }
export PGPASSWORD=$("$B/dsql-token" --expires-in 3600)
pgbench -i -q -s 1 >/dev/null 2>&1
"$B/dsql-proxy" --listen "unix:$tmp/p" 2>"$tmp/proxy.err" &
pp=$!
while ! grep -q "ready on" "$tmp/proxy.err" 2>/dev/null; do sleep 0.1; done
viaproxy() { env -u PGHOSTADDR -u PGSSLMODE -u PGSSLROOTCERT -u PGPASSWORD PGHOST="$tmp/p" PGPORT=5432 "$@"; }
run() { # label, pgbench options
    label=$1; shift
    d=$(pgbench -n "$@" -c "$CLIENTS" -j 2 -T "$SECS" postgres 2>/dev/null | tps)
    p=$(viaproxy pgbench -n "$@" -c "$CLIENTS" -j 2 -T "$SECS" postgres 2>/dev/null | tps)
    r=$(python3 -c "print('%.2f' % ($p / $d))")
    echo "$label: direct to the gateway $d tps, through dsql-proxy $p tps, ratio $r"
}
echo "== pgbench, $CLIENTS clients, $SECS s per run, scale 1, all on 127.0.0.1 ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
run "select-only, persistent connections (-S)" -S
run "select-only, a new connection per transaction (-S -C)" -S -C
kill $pp; wait $pp || true
SH
# --postgres-compat: pgbench -i uses TRUNCATE, VACUUM and DDL with DML
"$B/dsql-local" run --postgres-compat -- sh "$tmp/inner.sh"

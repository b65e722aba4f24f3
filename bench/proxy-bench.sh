#!/bin/sh
# pgbench against dsql-local's gateway three ways, side by side in one run:
#   direct     pgbench straight to the gateway (verify-full TLS, a token as
#              the password);
#   proxy      through dsql-proxy (Unix socket in, verify-full TLS out);
#   pgbouncer  through Debian's PgBouncer in session mode (Unix socket in,
#              verify-full TLS out, a 7-day token from the long-term key as
#              its password; its SNI is its host= name, so the gateway also
#              serves the resolvable name localhost).
# Select-only with persistent connections (-S), then a new connection per
# transaction (-S -C). The machine is shared and noisy, so the three are
# interleaved for ROUNDS rounds (the order rotates each round) and the
# medians compared. Prints every run, the medians, the ratios and the load.
# BASELINE=path/to/another/dsql-proxy adds a fourth way, that binary as a
# second proxy, to compare two builds in the same run.
# Usage: B=build ROUNDS=5 SECONDS_PER_RUN=5 CLIENTS=4 [BASELINE=...] sh bench/proxy-bench.sh
set -eu
B=${B:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
export B
export SECS=${SECONDS_PER_RUN:-5} CLIENTS=${CLIENTS:-4} ROUNDS=${ROUNDS:-5} BASELINE=${BASELINE:-}
command -v pgbouncer >/dev/null || { echo "proxy-bench: pgbouncer not installed (scripts/install-deps)" >&2; exit 1; }
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
export tmp
cat >"$tmp/inner.sh" <<'SH'
set -eu
tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1; }
export PGPASSWORD=$("$B/dsql-token" --expires-in 3600)
pgbench -i -q -s 1 >/dev/null 2>&1
ready() { # log file: wait for the ready line
    i=0
    until grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1)); [ $i -le 200 ] || { cat "$1" >&2; exit 1; }
        sleep 0.1
    done
}
"$B/dsql-proxy" --listen "unix:$tmp/p" 2>"$tmp/proxy.err" &
pp=$!
ready "$tmp/proxy.err" "ready on"
ways="direct proxy pgbouncer"
bp=
if [ -n "$BASELINE" ]; then
    "$BASELINE" --listen "unix:$tmp/q" 2>"$tmp/baseline.err" &
    bp=$!
    ready "$tmp/baseline.err" "ready on"
    ways="$ways baseline"
fi

# PgBouncer may not run as root: then it drops to nobody, which owns its
# directory (its password, the token, is kept there, 0600)
mkdir -m 700 "$tmp/b"
cp "$PGSSLROOTCERT" "$tmp/b/ca.pem"
token=$("$B/dsql-token" --hostname localhost --region "$AWS_REGION" --expires-in 604800)
cat >"$tmp/b/pgbouncer.ini" <<INI
[databases]
postgres = host=localhost port=$PGPORT dbname=postgres user=admin password='$token'
[pgbouncer]
listen_addr =
unix_socket_dir = $tmp/b
listen_port = 6432
auth_type = trust
auth_file = $tmp/b/users.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 20
server_tls_sslmode = verify-full
server_tls_ca_file = $tmp/b/ca.pem
logfile = $tmp/b/pgbouncer.log
pidfile = $tmp/b/pgbouncer.pid
INI
echo '"admin" ""' >"$tmp/b/users.txt"
chmod 600 "$tmp/b/pgbouncer.ini" "$tmp/b/users.txt"
if [ "$(id -u)" = 0 ]; then
    chown -R nobody "$tmp/b"
    pgbouncer -d -u nobody "$tmp/b/pgbouncer.ini"
else
    pgbouncer -d "$tmp/b/pgbouncer.ini"
fi
ready "$tmp/b/pgbouncer.log" "process up"
stop_all() {
    kill "$(cat "$tmp/b/pgbouncer.pid")" 2>/dev/null || true
    kill $pp $bp 2>/dev/null || true
    wait $pp $bp 2>/dev/null || true
}
trap stop_all EXIT

unset_gateway() { env -u PGHOSTADDR -u PGSSLMODE -u PGSSLROOTCERT -u PGPASSWORD -u PGPORT "$@"; }
one() { # where, pgbench options: prints tps
    where=$1; shift
    case $where in
        direct) set -- pgbench "$@" ;;
        proxy) set -- unset_gateway env PGHOST="$tmp/p" pgbench "$@" ;;
        baseline) set -- unset_gateway env PGHOST="$tmp/q" pgbench "$@" ;;
        pgbouncer) set -- unset_gateway env PGHOST="$tmp/b" PGPORT=6432 pgbench "$@" ;;
    esac
    "$@" -n -c "$CLIENTS" -j 2 -T "$SECS" postgres 2>"$tmp/pgbench.err" | tps | grep . ||
        { echo "proxy-bench: $where failed:" >&2; cat "$tmp/pgbench.err" >&2; exit 1; }
}
# a first connection each way, so no one pays for a cold start
runsecs=$SECS SECS=1
for w in $ways; do one $w -S >/dev/null; done
SECS=$runsecs

echo "== pgbench, $CLIENTS clients, -j 2, $SECS s per run, $ROUNDS rounds, scale 1, all on 127.0.0.1"
echo "== $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in S C; do
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        # the order rotates by one each round
        set -- $ways
        i=0
        while [ $i -lt $((r % $#)) ]; do w=$1; shift; set -- "$@" "$w"; i=$((i + 1)); done
        order="$*"
        for w in $order; do
            if [ $mode = S ]; then t=$(one $w -S); else t=$(one $w -S -C); fi
            echo "$mode $w $t $(cut -d' ' -f1 /proc/loadavg)" >>"$tmp/results"
            echo "round $((r + 1)) -$mode $w: $t tps (load $(cut -d' ' -f1 /proc/loadavg))"
        done
        r=$((r + 1))
    done
done
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp/results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    mode, where, tps, _ = line.split()
    runs.setdefault((mode, where), []).append(float(tps))
med = {k: statistics.median(v) for k, v in runs.items()}
names = {"S": "select-only, persistent connections (-S)",
         "C": "select-only, a new connection per transaction (-S -C)"}
for mode in "SC":
    d, p, b = (med[(mode, w)] for w in ("direct", "proxy", "pgbouncer"))
    print("%s: median tps direct %.0f, dsql-proxy %.0f, pgbouncer %.0f; "
          "proxy/direct %.2f, proxy/pgbouncer %.2f"
          % (names[mode], d, p, b, p / d, p / b))
    if (mode, "baseline") in med:
        q = med[(mode, "baseline")]
        print("  baseline dsql-proxy %.0f: baseline/direct %.2f, baseline/pgbouncer %.2f, "
              "proxy/baseline %.2f" % (q, q / d, q / b, p / q))
PY
SH
# --postgres-compat: pgbench -i uses TRUNCATE, VACUUM and DDL with DML.
# Two names: the cluster's own, and localhost for PgBouncer's SNI.
"$B/dsql-local" run --postgres-compat --hostname abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws \
    --hostname localhost -- sh "$tmp/inner.sh"

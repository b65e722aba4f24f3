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
# medians compared. Prints every run, the medians, the ratios, the load,
# the CPU each part (client, relay, gateway, PostgreSQL) spent per
# transaction, and per transaction the context switches of the relay and
# the gateway and PostgreSQL's page faults.
# BASELINE=path/to/another/dsql-proxy adds a fourth way, that binary as a
# second proxy, to compare two builds in the same run.
# MODES="S" runs only the persistent-connection runs.
# PgBouncer keeps its server connections after pgbench leaves, so its next
# run would find warm PostgreSQL backends while the other ways start new
# ones (which page-fault their way through shared memory: 0.4 faults per
# transaction at 16 clients against 0.0, and PostgreSQL's CPU per
# transaction half as much again). By default (PGBOUNCER_POOL=fresh) it
# closes them after 1 s idle, so every way starts each run with new
# backends; PGBOUNCER_POOL=keep gives it its default 600 s.
# Usage: B=build ROUNDS=5 SECONDS_PER_RUN=5 CLIENTS=4 MODES="S C" [BASELINE=...]
#        [PGBOUNCER_POOL=fresh|keep] sh bench/proxy-bench.sh
set -eu
B=${B:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
export B
export SECS=${SECONDS_PER_RUN:-5} CLIENTS=${CLIENTS:-4} ROUNDS=${ROUNDS:-5} BASELINE=${BASELINE:-}
export MODES=${MODES:-S C} THREADS=$((CLIENTS < 2 ? CLIENTS : 2))
case ${PGBOUNCER_POOL:=fresh} in
    fresh) export PGBOUNCER_IDLE=1 ;;
    keep) export PGBOUNCER_IDLE=600 ;;
    *) echo "proxy-bench: PGBOUNCER_POOL is fresh or keep" >&2; exit 2 ;;
esac
command -v pgbouncer >/dev/null || { echo "proxy-bench: pgbouncer not installed (scripts/install-deps)" >&2; exit 1; }
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
export tmp
cat >"$tmp/inner.sh" <<'SH'
set -eu
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
server_idle_timeout = $PGBOUNCER_IDLE
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

# CPU per transaction, by part: the client (pgbench, from its shell's
# children times), the relay (dsql-proxy or PgBouncer, by pid), the gateway
# and PostgreSQL (every dsql-local and postgres process under dsql-local
# run; reaped backends count through their parent's children times).
# Clock ticks: 100 a second, so a 5 s run at 10,000 tps resolves ~0.2 us.
cat >"$tmp/cpu.py" <<'PY'
import os, sys
root, relays = sys.argv[1], dict(a.split("=") for a in sys.argv[2:])
procs = {}
for pid in os.listdir("/proc"):
    try:
        s = open("/proc/%s/stat" % pid).read()
    except OSError:
        continue
    i = s.rfind(")")
    f = s[i + 2:].split()
    procs[pid] = (s[s.find("(") + 1:i], f[1], [int(x) for x in f[11:15]], int(f[7]) + int(f[8]))
def under_root(pid):
    while pid in procs and pid not in ("0", "1"):
        if pid == root:
            return True
        pid = procs[pid][1]
    return False
def switches(pid): # context switches, voluntary and not
    try:
        return sum(int(l.split()[1]) for l in open("/proc/%s/status" % pid)
                   if "ctxt_switches:" in l)
    except OSError:
        return 0
ticks = {}
for pid, (comm, _, t, faults) in procs.items():
    if pid in relays.values():
        role = [k for k, v in relays.items() if v == pid][0]
        ticks[role] = t[0] + t[1]
        ticks[role + "_cs"] = switches(pid)
    elif comm == "dsql-local" and under_root(pid):
        ticks["gateway"] = ticks.get("gateway", 0) + t[0] + t[1]
        ticks["gateway_cs"] = ticks.get("gateway_cs", 0) + switches(pid)
    elif comm == "postgres" and under_root(pid):
        ticks["postgres"] = ticks.get("postgres", 0) + sum(t)
        ticks["postgres_faults"] = ticks.get("postgres_faults", 0) + faults
print(" ".join("%s=%d" % kv for kv in sorted(ticks.items())))
PY
cpu_snapshot() {
    python3 "$tmp/cpu.py" "$root" proxy=$pp ${bp:+baseline=$bp} \
        pgbouncer="$(cat "$tmp/b/pgbouncer.pid")"
}
root=$PPID # dsql-local run
unset_gateway="env -u PGHOSTADDR -u PGSSLMODE -u PGSSLROOTCERT -u PGPASSWORD -u PGPORT"
one() { # where, pgbench options: prints "tps client relay gateway postgres", us/txn
    where=$1; shift
    case $where in
        direct) set -- pgbench "$@" ;;
        proxy) set -- $unset_gateway PGHOST="$tmp/p" pgbench "$@" ;;
        baseline) set -- $unset_gateway PGHOST="$tmp/q" pgbench "$@" ;;
        pgbouncer) set -- $unset_gateway PGHOST="$tmp/b" PGPORT=6432 pgbench "$@" ;;
    esac
    before=$(cpu_snapshot)
    sh -c '"$@" -n -c "$CLIENTS" -j "$THREADS" -T "$SECS" postgres >"$tmp/pgbench.out" 2>"$tmp/pgbench.err"
        s=$?; cat /proc/$$/stat >"$tmp/pgbench.stat"; exit $s' sh "$@" ||
        { echo "proxy-bench: $where failed:" >&2; cat "$tmp/pgbench.err" >&2; exit 1; }
    sleep 0.3 # the backends' exits are reaped
    python3 - "$where" "$before" "$(cpu_snapshot)" "$tmp/pgbench.out" "$tmp/pgbench.stat" <<'PY'
import os, re, sys
where, before, after, out, stat = sys.argv[1:]
tps = float(re.search(r"^tps = ([0-9.]+) ", open(out).read(), re.M).group(1))
f = open(stat).read()
f = f[f.rfind(")") + 2:].split()
b, a = (dict(kv.split("=") for kv in x.split()) for x in (before, after))
relay = "pgbouncer" if where == "pgbouncer" else where if where in ("proxy", "baseline") else None
parts = [int(f[13]) + int(f[14]),
         int(a[relay]) - int(b[relay]) if relay else 0,
         int(a["gateway"]) - int(b["gateway"]),
         int(a["postgres"]) - int(b["postgres"])]
# context switches of the relay and the gateway (live processes only),
# and PostgreSQL's page faults
counts = [int(a[relay + "_cs"]) - int(b[relay + "_cs"]) if relay else 0,
          int(a["gateway_cs"]) - int(b["gateway_cs"]),
          int(a["postgres_faults"]) - int(b["postgres_faults"])]
txns = tps * float(os.environ["SECS"])
print("%.0f %s %s" % (tps, " ".join("%.1f" % (t * 1e4 / txns) for t in parts),
                      " ".join("%.2f" % (c / txns) for c in counts)))
PY
}
# a first connection each way, so no one pays for a cold start
runsecs=$SECS SECS=1
for w in $ways; do one $w -S >/dev/null; done
SECS=$runsecs

echo "== pgbench, $CLIENTS clients, -j $THREADS, $SECS s per run, $ROUNDS rounds, scale 1, all on 127.0.0.1;" \
    "PgBouncer's server connections closed after $PGBOUNCER_IDLE s idle"
echo "== $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== before: $("$B/bench/hop-bench")"
for mode in $MODES; do
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        # the order rotates by one each round
        set -- $ways
        i=0
        while [ $i -lt $((r % $#)) ]; do w=$1; shift; set -- "$@" "$w"; i=$((i + 1)); done
        order="$*"
        for w in $order; do
            if [ $mode = S ]; then t=$(one $w -S); else t=$(one $w -S -C); fi
            echo "$mode $w $t" >>"$tmp/results"
            set -- $t
            echo "round $((r + 1)) -$mode $w: $1 tps (load $(cut -d' ' -f1 /proc/loadavg));" \
                "CPU us/txn: client $2, relay $3, gateway $4, postgres $5;" \
                "context switches/txn: relay $6, gateway $7; postgres page faults/txn $8"
        done
        r=$((r + 1))
    done
done
echo "== after: $("$B/bench/hop-bench")"
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp/results" <<'PY'
import os, statistics, sys
clients = int(os.environ["CLIENTS"])
runs = {}
for line in open(sys.argv[1]):
    mode, where, *nums = line.split()
    runs.setdefault((mode, where), []).append([float(x) for x in nums])
def med(mode, where, i=0):
    return statistics.median(r[i] for r in runs[(mode, where)])
names = {"S": "select-only, persistent connections (-S)",
         "C": "select-only, a new connection per transaction (-S -C)"}
for mode in os.environ["MODES"].split():
    d, p, b = (med(mode, w) for w in ("direct", "proxy", "pgbouncer"))
    print("%s: median tps direct %.0f, dsql-proxy %.0f, pgbouncer %.0f; "
          "proxy/direct %.2f, proxy/pgbouncer %.2f"
          % (names[mode], d, p, b, p / d, p / b))
    # the three of a round ran within seconds of each other: their ratios
    # cancel the machine's slower and faster spells
    for other in ("direct", "pgbouncer"):
        r = [x[0] / y[0] for x, y in zip(runs[(mode, "proxy")], runs[(mode, other)])]
        print("  proxy/%s round by round: %s; median %.2f"
              % (other, " ".join("%.2f" % x for x in r), statistics.median(r)))
    if mode == "S":
        # each client waits for its answer: latency = clients / tps
        lat = {w: clients / med(mode, w) * 1e6 for w in ("direct", "proxy", "pgbouncer")}
        print("  latency per transaction (clients / tps): direct %.0f us; the proxy adds %.0f us,"
              " PgBouncer %.0f us (compare one process hop above)"
              % (lat["direct"], lat["proxy"] - lat["direct"], lat["pgbouncer"] - lat["direct"]))
    if (mode, "baseline") in runs:
        q = med(mode, "baseline")
        r = [x[0] / y[0] for x, y in zip(runs[(mode, "proxy")], runs[(mode, "baseline")])]
        print("  baseline dsql-proxy %.0f: baseline/direct %.2f, baseline/pgbouncer %.2f; "
              "proxy/baseline round by round: %s; median %.2f"
              % (q, q / d, q / b, " ".join("%.2f" % x for x in r), statistics.median(r)))
    print("  medians per transaction: CPU us of client, relay, gateway, postgres = total;"
          " context switches of relay, gateway; postgres page faults")
    for w in sorted({w for m, w in runs if m == mode}, key=["direct", "proxy", "pgbouncer", "baseline"].index):
        parts = [med(mode, w, i) for i in range(1, 5)]
        print("    %-9s %5.1f  %5.1f  %5.1f  %5.1f  = %5.1f;  %4.2f  %4.2f;  %4.2f"
              % ((w,) + tuple(parts) + (sum(parts),) + tuple(med(mode, w, i) for i in (5, 6, 7))))
PY
SH
# --postgres-compat: pgbench -i uses TRUNCATE, VACUUM and DDL with DML.
# Two names: the cluster's own, and localhost for PgBouncer's SNI.
"$B/dsql-local" run --postgres-compat --hostname abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws \
    --hostname localhost -- sh "$tmp/inner.sh"

#!/bin/sh
# Where dsql-proxy's time goes in steady state: pgbench select-only with
# persistent connections through the proxy (Unix socket in, verify-full
# TLS out to dsql-local's gateway), after the sessions logged in.
#   1. perf samples the proxy alone (if perf may): self time by symbol and
#      by library.
#   2. callgrind counts, exactly, the calls the proxy makes per
#      transaction (allocator, copies, TLS, system calls), collecting only
#      around a fixed number of transactions on one connection.
# Usage: B=build SECONDS_PER_RUN=20 CLIENTS=4 TRANSACTIONS=2000 sh bench/proxy-profile.sh
set -eu
B=${B:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
export B
export SECS=${SECONDS_PER_RUN:-20} CLIENTS=${CLIENTS:-4} TX=${TRANSACTIONS:-2000}
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
export tmp PERF=${PERF:-1}
cat >"$tmp/inner.sh" <<'SH'
set -eu
export PGPASSWORD=$("$B/dsql-token" --expires-in 3600)
pgbench -i -q -s 1 >/dev/null 2>&1
bench() { env -u PGHOSTADDR -u PGSSLMODE -u PGSSLROOTCERT -u PGPASSWORD -u PGPORT \
    pgbench -n -S -h "$tmp/p" "$@" postgres; }
ready() {
    i=0
    until grep -q "ready on" "$tmp/proxy.err" 2>/dev/null; do
        i=$((i + 1)); [ $i -le 600 ] || { cat "$tmp/proxy.err" >&2; exit 1; }
        sleep 0.1
    done
}
echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${PERF:-1}" = 1 ] && perf record -o "$tmp/probe.data" -- true >/dev/null 2>&1; then
    rm -f "$tmp/proxy.err"
    "$B/dsql-proxy" --listen "unix:$tmp/p" 2>"$tmp/proxy.err" &
    pp=$!
    ready
    bench -c "$CLIENTS" -T 3 >/dev/null 2>&1 # logins, caches warm
    bench -c "$CLIENTS" -T "$SECS" >"$tmp/pgbench.out" 2>&1 &
    bp=$!
    sleep 2
    perf record -F 999 -p $pp -o "$tmp/perf.data" -- sleep $((SECS - 4)) >/dev/null 2>&1
    wait $bp
    kill $pp
    wait $pp || true
    echo "== perf: pgbench -S -c $CLIENTS -T $SECS through the proxy," \
        "$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$tmp/pgbench.out") tps"
    echo "-- proxy self time by library"
    perf report -i "$tmp/perf.data" --no-children --sort dso --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -10
    echo "-- proxy self time by symbol (top 25)"
    perf report -i "$tmp/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -25
    echo "-- the allocator and copies, summed"
    perf report -i "$tmp/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
        awk '/^ +[0-9]/ { p = $1; sub("%", "", p); s = $3;
             if (s ~ /^(malloc|free|realloc|calloc|cfree|_int_malloc|_int_free|malloc_consolidate|__libc_malloc|__libc_free|__GI___libc_malloc|__GI___libc_free|_int_free_merge_chunk|_int_free_create_chunk|tcache_get|tcache_put)$/) a += p;
             if (s ~ /memcpy|memmove/) c += p }
             END { printf "  allocator %.2f%%, memcpy/memmove %.2f%% of the proxy'"'"'s samples\n", a, c }'
else
    echo "== perf: not allowed here; skipped"
fi

if command -v valgrind >/dev/null; then
    rm -f "$tmp/proxy.err"
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
        "$B/dsql-proxy" --listen "unix:$tmp/p" 2>"$tmp/proxy.err" &
    pp=$!
    ready
    # one connection: log in and warm up uncounted, then count TX
    # transactions; pgbench -C is not used, so no login is in the count
    python3 - "$tmp/p/.s.PGSQL.5432" "$TX" "$pp" >"$tmp/counted" <<'PY'
import socket, struct, subprocess, sys
path, n, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_UNIX); s.connect(path)
body = struct.pack("!I", 196608) + b"user\0admin\0database\0postgres\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
buf = b""
def until_z():
    global buf
    while True:
        while len(buf) >= 5 and len(buf) >= 1 + struct.unpack("!I", buf[1:5])[0]:
            k = 1 + struct.unpack("!I", buf[1:5])[0]; m, buf = buf[:k], buf[k:]
            if m[:1] == b"E": raise SystemExit("error: %r" % m)
            if m[:1] == b"Z": return
        b = s.recv(65536)
        if not b: raise SystemExit("closed")
        buf += b
until_z()
# pgbench -S's statement, as the simple protocol sends it
q = b"SELECT abalance FROM pgbench_accounts WHERE aid = 1;\0"
msg = b"Q" + struct.pack("!I", len(q) + 4) + q
for i in range(200): s.sendall(msg); until_z()
subprocess.run(["callgrind_control", "--zero", pid], capture_output=True, check=True)
for i in range(n): s.sendall(msg); until_z()
subprocess.run(["callgrind_control", "--dump=counted", pid], capture_output=True, check=True)
s.sendall(b"X\0\0\0\4"); s.close()
print(n)
PY
    kill $pp
    wait $pp || true
    echo "== callgrind: calls per transaction ($(cat "$tmp/counted") transactions on one" \
        "connection, each a Query and its RowDescription, DataRow, CommandComplete," \
        "ReadyForQuery)"
    python3 - "$(ls "$tmp"/cg.out.* | head -1)" "$(cat "$tmp/counted")" <<'PY'
import re, sys
path, n = sys.argv[1], int(sys.argv[2])
names, calls, by, fn, cfn = {}, {}, {}, None, None
for line in open(path, errors="replace"):
    m = re.match(r"(c?)fn=\((\d+)\)(?: (.*))?", line)
    if m:
        fid, name = m.group(2), m.group(3)
        if name: names[fid] = name.strip()
        if m.group(1): cfn = names.get(fid, fid)
        else: fn = names.get(fid, fid)
        continue
    m = re.match(r"calls=(\d+)", line)
    if m and cfn:
        calls[cfn] = calls.get(cfn, 0) + int(m.group(1))
        by.setdefault(cfn, {})
        by[cfn][fn] = by[cfn].get(fn, 0) + int(m.group(1))
want = ["malloc", "free", "realloc", "calloc", "memcpy", "memmove",
        "SSL_read", "SSL_write", "read", "readv", "write", "writev", "recv", "send",
        "epoll_wait", "epoll_ctl", "ioctl", "evbuffer_add_buffer", "pgs_frames_feed"]
for w in want:
    total = sum(v for k, v in calls.items()
                if k == w or k.startswith(w + "'") or re.fullmatch(r"(__GI_|__libc_|__)*" + w + r"(_avx_unaligned_erms|_avx_unaligned|_sse2_unaligned_erms|_evex_unaligned_erms)?", k))
    print("  %-22s %7.2f" % (w, total / n))
for w in ("malloc", "free", "memcpy", "CRYPTO_malloc", "CRYPTO_zalloc", "CRYPTO_free", "event_mm_malloc_"):
    for k in calls:
        if k == w or re.fullmatch(r"(__GI_|__libc_|__)*" + w + r"(_\w+)?", k):
            top = sorted(by.get(k, {}).items(), key=lambda x: -x[1])[:6]
            print("  %s called from: %s" % (k, ", ".join("%s %.2f" % (c, v / n) for c, v in top)))
PY
else
    echo "== callgrind: valgrind not installed; skipped"
fi
SH
# --postgres-compat: pgbench -i uses TRUNCATE, VACUUM and DDL with DML
# (the relay does not care which rules the gateway applies)
"$B/dsql-local" run --postgres-compat -- sh ${PROFILE_TRACE:+-x} "$tmp/inner.sh"

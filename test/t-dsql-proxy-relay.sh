#!/bin/sh
# dsql-proxy's relay (tools/dsql-proxy/relay.c) at its edges, against a
# real dsql-local: a 4.8 MB answer to a client that reads slowly through
# a small socket buffer, and a 2 MB query to an upstream that reads
# slowly (both directions held back: the relay must stop reading one side
# and resume without losing, reordering or repeating a byte); 1000 queries
# pipelined in one burst; a client that closes in the middle of its
# message or of the answer; an upstream that closes in the middle of an
# answer. The proxy must keep serving and end every such session.
. "$(dirname "$0")/dsql-proxy-lib.sh"
proxy_script psql curl

cat >"$tmp/client.py" <<'PY'
# a raw protocol-3 client on the proxy's Unix socket
import hashlib, os, socket, struct, sys, time
path, case = sys.argv[1], sys.argv[2]
def conn(rcvbuf=0):
    s = socket.socket(socket.AF_UNIX)
    if rcvbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(60); s.connect(path)
    body = struct.pack("!I", 196608) + b"user\0admin\0database\0postgres\0\0"
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    return s
class Reader:
    def __init__(self, s, chunk=65536, pause=0):
        self.s, self.d, self.chunk, self.pause = s, b"", chunk, pause
    def message(self):
        # the next message, None at a close
        while len(self.d) < 5 or len(self.d) < 1 + struct.unpack("!I", self.d[1:5])[0]:
            b = self.s.recv(self.chunk)
            if not b: return None
            self.d += b
            if self.pause: time.sleep(self.pause)
        n = 1 + struct.unpack("!I", self.d[1:5])[0]
        m, self.d = self.d[:n], self.d[n:]
        return m
    def until_z(self):
        # the messages up to ReadyForQuery; None if the connection closed first
        got = []
        while True:
            m = self.message()
            if m is None: return None
            got.append(m)
            if m[:1] == b"Z": return got
def query(sql):
    q = sql.encode() + b"\0"
    return b"Q" + struct.pack("!I", len(q) + 4) + q
def columns(d):
    # a DataRow's values
    n = struct.unpack("!H", d[5:7])[0]; at = 7; out = []
    for i in range(n):
        k = struct.unpack("!i", d[at:at + 4])[0]; at += 4
        out.append(d[at:at + k]); at += k
    return out
def rows(msgs): return [columns(m) for m in msgs if m[:1] == b"D"]
def error(msgs):
    for m in msgs or []:
        if m[:1] == b"E": return m[5:].split(b"\0")[2][1:].decode(errors="replace")
    return ""
BIG = ("with t as (select string_agg(md5(i::text), '' order by i) v "
       "from generate_series(1, 150000) i) select v, md5(v) from t")
if case == "big-answer":
    # a 4.8 MB value to a client with an 8 KB receive buffer that waits 2 s
    # before reading, then reads 4 KB at a time
    s = conn(8192); r = Reader(s, 4096)
    if r.until_z() is None: print("no login"); sys.exit()
    s.sendall(query(BIG)); time.sleep(2)
    got = r.until_z()
    v = rows(got or [])
    if not v: print("no row", error(got)); sys.exit()
    print("%d bytes, md5 %s" % (len(v[0][0]), "matches" if hashlib.md5(v[0][0]).hexdigest().encode() == v[0][1] else "differs"))
elif case == "big-query":
    # a 2 MB query (random hex), answered with its md5 and length
    s = conn(); r = Reader(s)
    if r.until_z() is None: print("no login"); sys.exit()
    lit = os.urandom(1000000).hex()
    s.sendall(query("select md5('%s'), length('%s')" % (lit, lit)))
    got = r.until_z()
    v = rows(got or [])
    if not v: print("no row", error(got)); sys.exit()
    ok = v[0][0] == hashlib.md5(lit.encode()).hexdigest().encode()
    print("%s bytes, md5 %s" % (v[0][1].decode(), "matches" if ok else "differs"))
elif case == "pipeline":
    # 1000 queries in one write, before reading any answer
    s = conn(); r = Reader(s)
    if r.until_z() is None: print("no login"); sys.exit()
    s.sendall(b"".join(query("select %d" % i) for i in range(1000)))
    got = []
    for i in range(1000):
        m = r.until_z()
        if m is None: break
        got += [int(c[0]) for c in rows(m)]
    print("%d answers, %s" % (len(got), "in order" if got == list(range(1000)) else "out of order"))
elif case == "client-cut-query":
    # half a 100 000-byte Query message, then the client goes
    s = conn(); r = Reader(s)
    if r.until_z() is None: print("no login"); sys.exit()
    s.sendall(b"Q" + struct.pack("!I", 100004) + b"select '" + b"x" * 50000); s.close()
    print("sent half, closed")
elif case == "client-cut-answer":
    # reads 100 KB of the 4.8 MB answer, then closes with the rest unread
    s = conn(); r = Reader(s)
    if r.until_z() is None: print("no login"); sys.exit()
    s.sendall(query(BIG)); n = 0
    while n < 100000:
        b = s.recv(65536)
        if not b: break
        n += len(b)
    s.close()
    print("read %s, closed" % ("100 KB" if n >= 100000 else "%d bytes" % n))
elif case == "upstream-cut":
    # the upstream goes in the middle of the answer: what came, then a close
    s = conn(); r = Reader(s)
    if r.until_z() is None: print("no login"); sys.exit()
    s.sendall(query(BIG)); n = 0; t = time.time()
    try:
        while True:
            b = s.recv(65536)
            if not b: break
            n += len(b)
        end = "closed"
    except socket.timeout:
        end = "left open"
    print("%s after %s" % (end, "part of the answer" if 0 < n < 4800000 else "%d bytes" % n))
elif case == "select":
    s = conn(); r = Reader(s)
    if r.until_z() is None: print("no login"); sys.exit()
    s.sendall(query("select 40 + 2"))
    got = r.until_z()
    print(rows(got)[0][0].decode() if got and rows(got) else "no row " + error(got))
PY

# a TCP forwarder between the proxy and the gateway: "slow" takes what
# the proxy sends 16 KB at a time with a pause, through a small receive
# buffer (the proxy's TLS writes must wait); "cut N" closes both sides once
# N bytes came back from the gateway after the first 20 000 (the login)
cat >"$tmp/fwd.py" <<'PY'
import os, socket, sys, threading, time
mode = sys.argv[1]; limit = int(sys.argv[2]) if len(sys.argv) > 2 else 0
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
def shut(*socks):
    for x in socks:
        try: x.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def up(c, u):  # proxy -> gateway
    try:
        while True:
            d = c.recv(16384)
            if not d: break
            u.sendall(d)
            if mode == "slow" and len(d) > 1000: time.sleep(0.01)
    except OSError: pass
    shut(u)
def down(c, u):  # gateway -> proxy
    n = 0
    try:
        while True:
            d = u.recv(65536)
            if not d: break
            c.sendall(d); n += len(d)
            if mode == "cut" and n > 20000 + limit:
                shut(c, u); break
    except OSError: pass
    shut(c)
while True:
    c, _ = s.accept()
    u = socket.create_connection(("127.0.0.1", int(os.environ["PGPORT"])))
    threading.Thread(target=up, args=(c, u), daemon=True).start()
    threading.Thread(target=down, args=(c, u), daemon=True).start()
PY

cat >"$tmp/inner.sh" <<'SH'
. "$SRC/test/dsql-proxy-lib.sh"
# start_proxy with --metrics on a free port, that port in $tmp/NAME.mport
metrics_proxy() { # name, options...
    start_proxy "$@" --metrics tcp:127.0.0.1:0 || return 1
    sed -n 's/.*metrics on tcp:127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/$1.err" >"$tmp/$1.mport"
}
client() { python3 "$tmp/client.py" "$@"; }
# until the proxy $1 has no session open (the lib's 60 s: closing a cut
# session may take a loaded machine under ASan more than the 10 s it had)
none_open() {
    curl -sf --max-time 10 "http://127.0.0.1:$(cat "$tmp/$1.mport")/metrics" |
        grep -qx 'dsql_proxy_connections 0'
}
no_sessions() { until_true none_open "$1"; }
forwarder() { # name, mode, limit: its port in $tmp/name.port
    name=$1; shift
    python3 "$tmp/fwd.py" "$@" >"$tmp/$name.port" &
    echo $! >"$tmp/$name.fpid"
    until_line "$tmp/$name.port" .
}

mkdir -m 755 "$tmp/s" "$tmp/w" "$tmp/c"
metrics_proxy main --listen "unix:$tmp/s" || { echo "FAIL proxy did not start"; exit 1; }
sock=$tmp/s/.s.PGSQL.5432
out=$(client "$sock" big-answer)
check "a 4.8 MB answer to a slow reader arrives whole ($out)" test "$out" = "4800000 bytes, md5 matches"
out=$(client "$sock" pipeline)
check "1000 pipelined queries: every answer, in order ($out)" test "$out" = "1000 answers, in order"
out=$(client "$sock" client-cut-query)
check "a client gone in the middle of its message ($out): its session ends" no_sessions main
out=$(client "$sock" client-cut-answer)
check "a client gone in the middle of the answer ($out): its session ends" no_sessions main
out=$(client "$sock" select)
check "still serving ($out)" test "$out" = 42
stop_proxy main
check "exit 0 after SIGTERM" test $? -eq 0

# the upstream reads slowly: the proxy's writes to it wait
forwarder slow slow
metrics_proxy slow --listen "unix:$tmp/w" --hostaddr 127.0.0.1 --port "$(cat "$tmp/slow.port")" ||
    bad "proxy (slow upstream) did not start"
out=$(client "$tmp/w/.s.PGSQL.5432" big-query)
check "a 2 MB query to a slow upstream arrives whole ($out)" test "$out" = "2000000 bytes, md5 matches"
out=$(client "$tmp/w/.s.PGSQL.5432" big-answer)
check "a 4.8 MB answer through it too ($out)" test "$out" = "4800000 bytes, md5 matches"
stop_proxy slow
kill "$(cat "$tmp/slow.fpid")"

# the upstream closes 1 MB into the answer
forwarder cut cut 1000000
metrics_proxy cut --listen "unix:$tmp/c" --hostaddr 127.0.0.1 --port "$(cat "$tmp/cut.port")" ||
    bad "proxy (cut upstream) did not start"
out=$(client "$tmp/c/.s.PGSQL.5432" upstream-cut)
check "an upstream gone in the middle of the answer: the client sees the close ($out)" \
    test "$out" = "closed after part of the answer"
check "... and its session ends" no_sessions cut
stop_proxy cut
kill "$(cat "$tmp/cut.fpid")"

no_sanitizer_reports
exit $fail
SH

run_inner
exit $fail

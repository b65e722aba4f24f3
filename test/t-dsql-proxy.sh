#!/bin/sh
# dsql-proxy against a real dsql-local: psql and pg_dump with no password,
# upstream errors as PostgreSQL errors, the uid and user rules, bad input
# from clients, cancel, token expiry, the connection cap, SIGTERM drain.
. "$(dirname "$0")/dsql-proxy-lib.sh"
proxy_script psql

# usage errors (exit 2) need no upstream
usage "give --client-password-file, or --trust-loopback" --listen tcp:127.0.0.1:0 --hostname a.dsql.us-east-1.on.aws
usage "only loopback addresses" --listen tcp:0.0.0.0:5432 --trust-loopback
usage "expected unix:DIR or tcp:127.0.0.1:PORT" --listen http://x
usage "--sslnegotiation 'tls' is not" --sslnegotiation tls
usage "--allow-uid 'bob' is not a uid" --allow-uid bob
usage "unknown option '--nope'" --nope
usage "--expires-in '0' is not" --expires-in 0
(unset PGHOST; usage "no host: give --hostname" --listen "unix:$tmp")
usage "--metrics tcp:0.0.0.0:9187: only loopback addresses" --metrics tcp:0.0.0.0:9187
usage "--metrics unix:/x: expected tcp:127.0.0.1:PORT" --metrics unix:/x

cat >"$tmp/raw.py" <<'PY'
import os, socket, struct, sys
sys.path.insert(0, os.path.join(os.environ["SRC"], "test"))
from proxy_wire import startup, read_all, until_z, running
path = sys.argv[1]; case = sys.argv[2]
def conn():
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(path); return s
def fields(d):
    if not d.startswith(b"E"): return repr(d[:20])
    return " ".join(f.decode(errors="replace") for f in d[5:].split(b"\0") if f[:1] in (b"C", b"M"))
if case == "ssl-gss":
    s = conn(); s.sendall(struct.pack("!II", 8, 80877104)); a = s.recv(1)
    s.sendall(struct.pack("!II", 8, 80877103)); b = s.recv(1)
    s.sendall(startup([(b"user", b"admin"), (b"database", b"postgres")]))
    r = s.recv(1)
    print(a.decode(), b.decode(), "then", r.decode())
elif case == "ssl-twice":
    # each is answered once; a client repeating one (a flood it never
    # reads the answers of) is refused
    s = conn(); s.sendall(struct.pack("!II", 8, 80877104)); a = s.recv(1)
    s.sendall(struct.pack("!II", 8, 80877103)); b = s.recv(1)
    s.sendall(struct.pack("!II", 8, 80877103)); print(a.decode(), b.decode(), fields(read_all(s)))
elif case == "duplicate":
    s = conn(); s.sendall(startup([(b"user", b"admin"), (b"user", b"app")])); print(fields(read_all(s)))
elif case == "huge":
    s = conn(); s.sendall(struct.pack("!II", 10 * 1024 * 1024, 196608)); print(fields(read_all(s)))
elif case == "garbage":
    s = conn(); s.sendall(os.urandom(2000)); read_all(s); print("closed")
elif case == "no-user":
    s = conn(); s.sendall(startup([(b"database", b"postgres")])); print(fields(read_all(s)))
elif case == "cancel":
    # what libpq's PQcancel does: the key from BackendKeyData, sent on a
    # new connection while the query runs
    import time
    s = conn(); s.sendall(startup([(b"user", b"admin"), (b"database", b"postgres")]))
    buf = b""; key = None
    while True:
        buf += s.recv(65536)
        while len(buf) >= 5 and len(buf) >= 1 + struct.unpack("!I", buf[1:5])[0]:
            n = 1 + struct.unpack("!I", buf[1:5])[0]; m, buf = buf[:n], buf[n:]
            if m[:1] == b"K": key = m[5:13]
            if m[:1] == b"Z": break
        else:
            continue
        break
    q = b"select pg_sleep(30)\0"
    s.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
    # cancel once the query runs upstream, not after a fixed sleep: a
    # cancel that comes first is ignored and the query runs its 30 s
    for i in range(600):
        if running(q[:-1].decode()): break
        time.sleep(0.1)
    t0 = time.time()
    c = conn(); c.sendall(struct.pack("!II", 16, 80877102) + key); c.close()
    s.settimeout(40); d = b""; err = b""
    while True:  # messages up to ReadyForQuery; keep the ErrorResponse
        while len(d) >= 5 and len(d) >= 1 + struct.unpack("!I", d[1:5])[0]:
            n = 1 + struct.unpack("!I", d[1:5])[0]; m, d = d[:n], d[n:]
            if m[:1] == b"E": err = m
            if m[:1] == b"Z": break
        else:
            b = s.recv(65536)
            if not b: break
            d += b
            continue
        break
    print(fields(err), "after %d s" % (time.time() - t0))
elif case == "many":
    # n clients log in at once, then each runs a query
    n = int(sys.argv[3]); socks = []
    for i in range(n):
        c = conn(); c.settimeout(60)
        c.sendall(startup([(b"user", b"admin"), (b"database", b"postgres")])); socks.append(c)
    ok = sum(1 for c in socks if until_z(c))
    q = b"select 1\0"
    for c in socks: c.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
    answered = sum(1 for c in socks if until_z(c))
    for c in socks: c.sendall(b"X\0\0\0\4"); c.close()
    print("%d logged in, %d answered" % (ok, answered))
elif case == "slowcreds":
    # an open session keeps answering while another client's login waits
    # for credentials the endpoint holds back for 8 s
    import json, threading, time, urllib.request
    ctl = "http://127.0.0.1:%s/_control/" % sys.argv[3]
    def configure(delay):
        cfg = {"access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
               "secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
               "session_token": None, "expires_in": 30}
        if delay: cfg["faults"] = {"ecs": {"delay": delay}}
        urllib.request.urlopen(urllib.request.Request(ctl + "config", json.dumps(cfg).encode()))
    def fetches():
        return json.load(urllib.request.urlopen(ctl + "stats"))["counts"].get("ecs", 0)
    s1 = conn(); s1.sendall(startup([(b"user", b"admin"), (b"database", b"postgres")]))
    if not until_z(s1): print("the first session did not log in"); sys.exit()
    configure(8)
    s2 = conn(); s2.settimeout(60)
    s2.sendall(startup([(b"user", b"admin"), (b"database", b"postgres")]))
    t = time.time()
    while fetches() == 0 and time.time() - t < 20: time.sleep(0.05)
    if fetches() == 0: print("the second login fetched no credentials"); sys.exit()
    s1.settimeout(5); answered = 0
    try:
        for i in range(20):
            q = b"select %d\0" % i
            s1.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
            answered += until_z(s1)
    except socket.timeout:
        pass
    s2.setblocking(False)
    try: waiting = s2.recv(1, socket.MSG_PEEK) == b"" and "closed" or "answered"
    except BlockingIOError: waiting = "still waiting"
    s2.settimeout(60)
    print("%d of 20 answered while the new login was %s; new login %s" %
          (answered, waiting, until_z(s2) and "in" or "refused"))
elif case == "metrics-bounds":
    # the metrics port: an endless request head, then MAX_CONNS idle
    # connections while the relay keeps working
    import subprocess, time
    port = int(path)
    def tcp():
        c = socket.create_connection(("127.0.0.1", port)); c.settimeout(15); return c
    c = tcp(); c.sendall(b"GET /metrics HTTP/1.0\r\nX: " + b"a" * 9000)
    big = read_all(c).split(b"\r\n")[0].decode()
    idle = [tcp() for i in range(8)]
    time.sleep(0.5)
    ninth = tcp(); ninth.settimeout(5)
    try: ninth_said = ninth.recv(100) == b"" and "closed" or "answered"
    except OSError: ninth_said = "left open"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PGHOSTADDR", "PGSSLMODE", "PGSSLROOTCERT", "PGPORT")}
    relay = subprocess.run(["psql", "-h", sys.argv[3], "-Atc", "select 5"], env=env,
                           capture_output=True, text=True).stdout.strip()
    def closed(c):
        try: return c.recv(100) == b""
        except OSError: return False
    gone = sum(1 for c in idle if closed(c))
    print("%s; 9th %s; relay %s; %d idle closed by the server" % (big, ninth_said, relay, gone))
elif case == "lifetime":
    # a session near the connection-duration limit: what reaches the client
    import time
    mode = sys.argv[3]
    t0 = time.time()
    s = conn(); s.settimeout(40)
    s.sendall(startup([(b"user", b"admin"), (b"database", b"postgres")]))
    got = []; d = b""
    def messages():
        global d
        while True:
            while len(d) >= 5 and len(d) >= 1 + struct.unpack("!I", d[1:5])[0]:
                n = 1 + struct.unpack("!I", d[1:5])[0]; m, d = d[:n], d[n:]
                yield m
            b = s.recv(65536)
            if not b: yield None; return
            d += b
    it = messages()
    for m in it:
        if m is None or m[:1] == b"Z": break
    def query(q, at):
        time.sleep(max(0, at - (time.time() - t0)))
        s.sendall(b"Q" + struct.pack("!I", len(q) + 5) + q + b"\0")
    if mode == "late": query(b"select pg_sleep(3), 'done'", 4)
    if mode == "busy": query(b"select pg_sleep(30), 'done'", 1)
    row = "no row"; fatal = "no FATAL"
    for m in it:
        if m is None: break
        if m[:1] == b"D" and b"done" in m: row = "row"
        if m[:1] == b"E": fatal = fields(m)
    print("%s, %s, closed after %d s" % (row, fatal, time.time() - t0))
elif case == "login":
    s = conn(); s.sendall(startup([(b"user", sys.argv[3].encode()), (b"database", b"postgres")]))
    print(fields(read_all(s)))
PY

# A TCP forwarder to the gateway ($PGPORT) on 127.0.0.1:PORT (0: any free
# port), the port printed once it listens. With CUT, it cuts every
# connection silently CUT seconds after it began, as an upstream may.
cat >"$tmp/fwd.py" <<'PY'
import os, socket, sys, threading, time
port, target = int(sys.argv[1]), int(os.environ["PGPORT"])
cut = float(sys.argv[2]) if len(sys.argv) > 2 else None
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(16)
print(s.getsockname()[1], flush=True)
def close(*socks):
    for x in socks:
        try: x.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError:
        pass
    close(a, b)
def cut_later(c, u):
    time.sleep(cut)
    close(c, u)
while True:
    c, _ = s.accept(); u = socket.create_connection(("127.0.0.1", target))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
    if cut is not None:
        threading.Thread(target=cut_later, args=(c, u), daemon=True).start()
PY

# the checks, run under one time limit against the gateway started below
cat >"$tmp/inner.sh" <<'SH'
. "$SRC/test/dsql-proxy-lib.sh"
# forward NAME PORT [CUT]: fwd.py on PORT, its pid in $fwd, its port in
# $tmp/NAME.port once it listens
forward() {
    python3 "$tmp/fwd.py" "$2" ${3:+"$3"} >"$tmp/$1.port" &
    fwd=$!
    until_line "$tmp/$1.port" .
}

mkdir -m 755 "$tmp/s" "$tmp/u"
start_proxy main --listen "unix:$tmp/s" --print-env || { echo "FAIL proxy did not start"; exit 1; }
check "ready line names the socket directory" grep -qx "dsql-proxy: ready on unix:$tmp/s" "$tmp/main.err"
check "--print-env points PGHOST at the directory" grep -qx "export PGHOST='$tmp/s'" "$tmp/main.out"
check "--print-env unsets PGHOSTADDR" grep -qx "unset PGHOSTADDR" "$tmp/main.out"
check "socket made" test -S "$tmp/s/.s.PGSQL.5432"
out=$( (. "$tmp/main.out"; psql -Atc 'select current_user, 40 + 2') 2>&1)
check "psql through the proxy with no password ($out)" test "$out" = "admin|42"
out=$(psql -h "$tmp/s" -Atc 'select 1' 2>&1)
check "psql -h DIR just works ($out)" test "$out" = 1
out=$( (. "$tmp/main.out"; pg_dump -s postgres) 2>&1)
pg_dump_st=$?
check "pg_dump through the proxy (exit $pg_dump_st)" has "$out" 'PostgreSQL database dump complete'
# 6 MB in one answer: more than the client's socket takes at once, so the
# relay writes what fits and leaves the rest to a write event
got=$(psql -h "$tmp/s" -Atc "select repeat('abc', 2000000)" 2>&1 | tr -d '\n' | md5sum | cut -d' ' -f1)
want=$(psql -h "$tmp/s" -Atc "select md5(repeat('abc', 2000000))" 2>&1)
check "a 6 MB answer arrives whole ($got, $want)" test "$got" = "$want"
out=$(psql -h "$tmp/s" -U nosuchrole -Atc 'select 1' 2>&1)
check "upstream's refusal reaches the client ($out)" has "$out" 'role "nosuchrole" does not exist'
out=$(raw "$tmp/s/.s.PGSQL.5432" ssl-gss)
check "GSSENCRequest and SSLRequest answered N, then a plaintext login ($out)" test "$out" = "N N then R"
out=$(raw "$tmp/s/.s.PGSQL.5432" ssl-twice)
check "a second SSLRequest is refused ($out)" test "$out" = "N N C08P01 Mdsql-proxy: a second SSLRequest"
out=$(raw "$tmp/s/.s.PGSQL.5432" duplicate)
check "duplicate startup keys refused ($out)" test "$out" = 'C08P01 Minvalid startup packet: parameter "user" appears more than once'
out=$(raw "$tmp/s/.s.PGSQL.5432" huge)
check "huge startup packet refused ($out)" test "$out" = "C08P01 Minvalid startup packet length"
out=$(raw "$tmp/s/.s.PGSQL.5432" no-user)
check "startup without a user refused ($out)" has "$out" '^C28000 Mno PostgreSQL user name'
out=$(raw "$tmp/s/.s.PGSQL.5432" garbage)
check "garbage: connection closed ($out)" test "$out" = closed
out=$(psql -h "$tmp/s" -Atc 'select 7' 2>&1)
check "still serving after bad input ($out)" test "$out" = 7

# cancel: a client-side cancel of a long query, through the proxy
out=$(raw "$tmp/s/.s.PGSQL.5432" cancel)
check "cancel of pg_sleep(30) reached the upstream ($out)" has "$out" '^C57014 Mcanceling statement due to user request after [12]\?[0-9] s$'
check "the proxy logged the forwarded cancel" grep -q "cancel request forwarded" "$tmp/main.err"

out=$(raw "$tmp/s/.s.PGSQL.5432" many 200)
check "200 concurrent clients ($out)" test "$out" = "200 logged in, 200 answered"

# every login's token is wiped once sent: a dump of the proxy's memory
# after 200 logins holds no token (a signature of 64 hex digits) but the
# PGPASSWORD of the environment it inherited from this script; not under
# sanitizers, whose shadow memory makes the dump huge
if [ -z "${SANITIZE:-}" ] && command -v gcore >/dev/null; then
    core=$tmp/core.$(cat "$tmp/main.pid")
    gcore -o "$tmp/core" "$(cat "$tmp/main.pid")" >/dev/null 2>&1
    if [ -s "$core" ]; then
        env_sig=$(printf '%s' "${PGPASSWORD:-}" | sed -n 's/.*X-Amz-Signature=\([0-9a-f]*\).*/\1/p')
        n=$(grep -a -o 'X-Amz-Signature=[0-9a-f]\{64\}' "$core" | grep -cv "${env_sig:-^$}")
        check "no token in the proxy's memory after 200 logins ($n found)" test "$n" -eq 0
    else
        echo "skip the memory check (gcore could not dump the proxy)"
    fi
    rm -f "$core"
fi

# the uid rule: another uid is refused unless --allow-uid names it
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    out=$(cd / && setpriv --reuid=65534 --regid=65534 --clear-groups env -u PGHOSTADDR -u PGSSLMODE -u PGSSLROOTCERT -u PGPORT HOME=/ psql -h "$tmp/s" -Atc 'select 1' 2>&1)
    check "another uid is refused ($out)" has "$out" 'this user may not connect'
    start_proxy uid --listen "unix:$tmp/u" --allow-uid 65534 || bad "proxy with --allow-uid did not start"
    out=$(cd / && setpriv --reuid=65534 --regid=65534 --clear-groups env -u PGHOSTADDR -u PGSSLMODE -u PGSSLROOTCERT -u PGPORT HOME=/ psql -h "$tmp/u" -Atc 'select 5' 2>&1)
    check "--allow-uid lets that uid in ($out)" test "$out" = 5
    stop_proxy uid
else
    echo "skip uid rule (needs root and setpriv)"
fi
stop_proxy main
check "no secret or token in the log" sh -c "! grep -qE 'X-Amz-Signature|$AWS_SECRET_ACCESS_KEY' '$tmp/main.err'"
check "socket removed at exit" test ! -e "$tmp/s/.s.PGSQL.5432"
check "clean exit logged" grep -q "stopped: " "$tmp/main.err"

# the default: a private directory
start_proxy def --print-env || bad "default proxy did not start"
dir=$(sed -n "s/^export PGHOST='\(.*\)'$/\1/p" "$tmp/def.out")
check "default socket directory is private ($dir)" sh -c "[ \"\$(stat -c %a '$dir')\" = 700 ]"
out=$(psql -h "$dir" -Atc 'select 3' 2>&1)
check "default directory serves ($out)" test "$out" = 3
stop_proxy def
check "default directory removed at exit" test ! -e "$dir"

# --sslnegotiation direct: TLS from the first byte, ALPN "postgresql"
# offered by the proxy and chosen by the gateway (tools/pgserver/tls.c)
start_proxy direct --listen "unix:$tmp/t" --sslnegotiation direct || bad "proxy (direct) did not start"
out=$(psql -h "$tmp/t" -Atc 'select 11' 2>&1)
check "--sslnegotiation direct logs in ($out)" test "$out" = 11
stop_proxy direct

# upstream problems reach the client as errors
start_proxy down --listen "unix:$tmp/d" --hostaddr 127.0.0.1 --port 1 || bad "proxy (down) did not start"
out=$(psql -h "$tmp/d" -Atc 'select 1' 2>&1)
check "upstream down: clear error ($out)" has "$out" 'dsql-proxy: cannot connect to 127.0.0.1 port 1: Connection refused'
stop_proxy down
# upstream down and back: a TCP forwarder to the gateway, stopped and
# started again on the same port
forward up 0 || bad "forwarder did not start"
fport=$(cat "$tmp/up.port")
fp=$fwd
start_proxy updown --listen "unix:$tmp/ud" --hostaddr 127.0.0.1 --port "$fport" || bad "proxy (down and back) did not start"
out1=$(psql -h "$tmp/ud" -Atc 'select 1' 2>&1)
kill $fp; wait $fp 2>/dev/null
out2=$(psql -h "$tmp/ud" -Atc 'select 2' 2>&1)
forward back "$fport" || bad "forwarder did not start again on port $fport"
fp=$fwd
out3=$(psql -h "$tmp/ud" -Atc 'select 3' 2>&1)
check "upstream up ($out1)" test "$out1" = 1
check "upstream down: clear error ($out2)" has "$out2" "cannot connect to 127.0.0.1 port $fport: Connection refused"
check "upstream back: clients get in again ($out3)" test "$out3" = 3
stop_proxy updown
kill $fp

# an upstream that answers the SSLRequest with N: a clear error, and no
# descriptor kept per attempt
python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept(); c.recv(8); c.sendall(b"N"); c.close()
' >"$tmp/nport" &
np=$!
until_line "$tmp/nport" . || bad "the no-TLS upstream did not start"
start_proxy notls --listen "unix:$tmp/x" --hostaddr 127.0.0.1 --port "$(cat "$tmp/nport")" || bad "proxy (no TLS upstream) did not start"
out=$(psql -h "$tmp/x" -Atc 'select 1' 2>&1)
check "upstream without TLS: clear error ($out)" has "$out" 'did not accept TLS'
fds() { ls /proc/"$(cat "$tmp/notls.pid")"/fd | wc -l; }
before=$(fds)
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do psql -h "$tmp/x" -Atc 'select 1' >/dev/null 2>&1; done
# the client has its error before the proxy is done with the attempt
until_true eval '[ "$(fds)" -le $((before + 2)) ]'
after=$(fds)
check "no descriptor leaked per refused upstream ($before before 20 attempts, $after after)" test "$after" -le $((before + 2))
stop_proxy notls
kill $np
cat /etc/ssl/certs/ca-certificates.crt >/dev/null 2>&1 && {
start_proxy ca --listen "unix:$tmp/c" --sslrootcert system || bad "proxy (ca) did not start"
out=$(psql -h "$tmp/c" -Atc 'select 1' 2>&1)
check "untrusted upstream certificate: clear error ($out)" has "$out" 'certificate verify failed'
stop_proxy ca; }
# no credentials: 28000 with the library's message, never a secret
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
 export AWS_CONFIG_FILE=$tmp/none AWS_SHARED_CREDENTIALS_FILE=$tmp/none AWS_EC2_METADATA_DISABLED=true
 start_proxy nocreds --listen "unix:$tmp/n") || bad "proxy (no credentials) did not start"
check "missing credentials warned at start" grep -q "warning: no token can be made yet" "$tmp/nocreds.err"
out=$(raw "$tmp/n/.s.PGSQL.5432" login admin)
check "missing credentials: 28000 for the client ($out)" has "$out" '^C28000 Mdsql-proxy: no token for user "admin"'
stop_proxy nocreds

# a slow credentials source: the container endpoint (test/aws_test_server.py)
# hands out credentials that expire in 30 s, inside the library's 1-minute
# mandatory window, so each login waits for a fresh fetch; that fetch is
# answered after 8 s. The fetch runs on the proxy's token thread: the
# relayed session must keep answering meanwhile.
python3 "$SRC/test/aws_test_server.py" --port 0 >"$tmp/aws.out" &
ap=$!
until_line "$tmp/aws.out" '^PORT' || bad "test/aws_test_server.py did not start"
aport=$(sed -n 's/^PORT //p' "$tmp/aws.out")
python3 -c 'import json, os, sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], json.dumps({"access_key_id": os.environ["AWS_ACCESS_KEY_ID"], "secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"], "session_token": None, "expires_in": 30}).encode()))' "http://127.0.0.1:$aport/_control/config"
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
 export AWS_CONFIG_FILE=$tmp/none AWS_SHARED_CREDENTIALS_FILE=$tmp/none \
     AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$aport/ecs/creds AWS_METADATA_SERVICE_TIMEOUT=30
 start_proxy slow --listen "unix:$tmp/w") || bad "proxy (slow credentials) did not start"
out=$(raw "$tmp/w/.s.PGSQL.5432" slowcreds "$aport")
check "slow credentials stall no open session ($out)" test "$out" = "20 of 20 answered while the new login was still waiting; new login in"
stop_proxy slow
kill $ap

# --metrics: counters moved by real sessions and refused logins
start_proxy met --listen "unix:$tmp/m" --metrics tcp:127.0.0.1:0 --allow-user admin \
    --allow-user nosuchrole || bad "proxy (metrics) did not start"
mport=$(sed -n 's/^dsql-proxy: ready on unix:[^ ]*; metrics on tcp:127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/met.err")
scrape() { curl -sf --max-time 10 "http://127.0.0.1:$mport/metrics" >"$tmp/$1.prom"; }
val() { awk -v k="$2" '$1 == k {print $2}' "$tmp/$1.prom"; }
delta() { echo $(($(val b "$1") - $(val a "$1"))); }
check "metrics scraped before ($mport)" scrape a
for i in 1 2 3; do psql -h "$tmp/m" -Atc 'select 1' >/dev/null 2>&1; done
# 50 000 bytes up, 100 000 down: the directions are told apart
big=$(head -c 50000 /dev/zero | tr '\0' x)
out=$(psql -h "$tmp/m" -Atc "select length('$big'), length(repeat('z', 100000))" 2>&1)
check "a session with a large query and a large answer ($out)" test "$out" = "50000|100000"
psql -h "$tmp/m" -Atc "select repeat('z', 100000)" >/dev/null 2>&1
psql -h "$tmp/m" -U nosuchrole -Atc 'select 1' >/dev/null 2>&1
psql -h "$tmp/m" -U app -Atc 'select 1' >/dev/null 2>&1
raw "$tmp/m/.s.PGSQL.5432" huge >/dev/null
# the holding query outlasts any wait for it (one of 3 s once ended before
# a loaded machine scraped); psql killed, not cancelled: a cancel would be
# a tenth connection
$plain_psql -h "$tmp/m" -Atc 'select pg_sleep(30) as metrics_hold' >/dev/null 2>&1 &
hp=$!
check "the holding query runs" wait_running "select pg_sleep(30) as metrics_hold"
# the sessions before it may still be closing on the proxy's side
counts() { scrape "$1" && [ "$(val "$1" dsql_proxy_connections) $(val "$1" dsql_proxy_sessions)" = "$2" ]; }
until_true counts c "1 1"
check "metrics scraped during a session" test -s "$tmp/c.prom"
check "one connection open, one session relaying ($(val c dsql_proxy_connections), $(val c dsql_proxy_sessions))" \
    test "$(val c dsql_proxy_connections) $(val c dsql_proxy_sessions)" = "1 1"
kill $hp
wait $hp
until_true counts b "0 0"
check "no connection open after they closed ($(val b dsql_proxy_connections), $(val b dsql_proxy_sessions))" \
    test "$(val b dsql_proxy_connections) $(val b dsql_proxy_sessions)" = "0 0"
check "connections_total +9 ($(delta dsql_proxy_connections_total))" test "$(delta dsql_proxy_connections_total)" = 9
check "logins_total +6 ($(delta dsql_proxy_logins_total))" test "$(delta dsql_proxy_logins_total)" = 6
for r in upstream_refused user protocol; do
    k="dsql_proxy_login_failures_total{reason=\"$r\"}"
    check "failures by reason: $r +1 ($(delta "$k"))" test "$(delta "$k")" = 1
done
k='dsql_proxy_login_failures_total{reason="credentials"}'
check "failures by reason: credentials +0 ($(delta "$k"))" test "$(delta "$k")" = 0
check "token_signings_total +7, one per upstream login ($(delta dsql_proxy_token_signings_total))" \
    test "$(delta dsql_proxy_token_signings_total)" = 7
check "credentials fetched once for all of them ($(val b dsql_proxy_credentials_refreshes_total))" \
    test "$(val b dsql_proxy_credentials_refreshes_total)" = 1
up=$(delta 'dsql_proxy_relayed_bytes_total{direction="to_upstream"}')
down=$(delta 'dsql_proxy_relayed_bytes_total{direction="to_client"}')
check "bytes to the upstream: the 50 000-byte query, not the answers ($up)" \
    test "$up" -ge 50000 -a "$up" -lt 100000
check "bytes to the client: the 100 000-byte answer ($down)" test "$down" -ge 100000
out=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/nope")
check "metrics: another path is 404 ($out)" test "$out" = 404
out=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$mport/metrics")
check "metrics: POST is 405 ($out)" test "$out" = 405
out=$(raw "$mport" metrics-bounds "$tmp/m")
check "metrics bounded: request size, connections, time ($out)" \
    test "$out" = "HTTP/1.0 431 Request Header Fields Too Large; 9th closed; relay 5; 8 idle closed by the server"
check "metrics still served after that" scrape d
stop_proxy met

# DSQL's one-hour limit, 6 s here: the upstream (the gateway behind a
# forwarder that cuts every connection silently 12 s after it began, as
# an upstream may) never says why; the proxy does. An idle session is ended
# by the proxy in the last tenth of the limit; one whose query ends in that
# window right after its answer; one busy through the cut gets the same
# FATAL when the upstream closes, its query never cut by the proxy.
forward cut 0 12 || bad "the cutting forwarder did not start"
cp=$fwd
start_proxy life --listen "unix:$tmp/h" --hostaddr 127.0.0.1 --port "$(cat "$tmp/cut.port")" \
    --max-connection-duration 6 --metrics tcp:127.0.0.1:0 || bad "proxy (lifetime) did not start"
pids=
for m in idle late busy; do raw "$tmp/h/.s.PGSQL.5432" lifetime $m >"$tmp/life.$m" & pids="$pids $!"; done
for j in $pids; do wait "$j"; done
limit_msg="C57P01 Mterminating connection: it reached Aurora DSQL's one-hour connection limit (dsql-proxy --max-connection-duration 6 s); reconnect to continue"
out=$(cat "$tmp/life.idle")
check "idle near the limit: a FATAL from the proxy before the upstream's cut ($out)" \
    sh -c 'case "$1" in "no row, $2, closed after "[5-9]" s"|"no row, $2, closed after 1"[01]" s") exit 0;; esac; exit 1' - "$out" "$limit_msg"
out=$(cat "$tmp/life.late")
check "a query ending in the window: its answer, then the FATAL ($out)" \
    sh -c 'case "$1" in "row, $2, closed after "[5-9]" s"|"row, $2, closed after 1"[01]" s") exit 0;; esac; exit 1' - "$out" "$limit_msg"
out=$(cat "$tmp/life.busy")
check "busy through the upstream's cut: not cut by the proxy, then the FATAL ($out)" \
    sh -c 'case "$1" in "no row, $2, closed after 1"[1-9]" s") exit 0;; esac; exit 1' - "$out" "$limit_msg"
mport=$(sed -n 's/^dsql-proxy: ready on unix:[^ ]*; metrics on tcp:127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/life.err")
check "metrics: 3 sessions ended at the limit" scrape e
check "duration_limit_closes_total 3 ($(val e dsql_proxy_duration_limit_closes_total))" \
    test "$(val e dsql_proxy_duration_limit_closes_total)" = 3
stop_proxy life
kill $cp

# --allow-user, --max-connections
start_proxy pol --listen "unix:$tmp/p" --allow-user admin --max-connections 1 || bad "proxy (policy) did not start"
out=$(psql -h "$tmp/p" -U app -Atc 'select 1' 2>&1)
check "--allow-user refuses others ($out)" has "$out" 'user "app" is not allowed through this proxy'
# connections that never send a startup packet do not count against the cap
python3 -c '
import socket, sys, time
held = [socket.socket(socket.AF_UNIX) for _ in range(3)]
for s in held:
    s.connect(sys.argv[1])
print("held", flush=True)
time.sleep(30)' "$tmp/p/.s.PGSQL.5432" >"$tmp/silent.out" 2>&1 &
sp=$!
until_line "$tmp/silent.out" held || bad "silent connections not made ($(cat "$tmp/silent.out"))"
out=$(psql -h "$tmp/p" -Atc 'select 1' 2>&1)
check "--max-connections 1 with 3 silent connections open: a client gets in ($out)" test "$out" = 1
kill $sp
# held until the second client had its answer (one of 5 s could end first)
$plain_psql -h "$tmp/p" -Atc 'select pg_sleep(30) as pol_hold' >/dev/null 2>&1 &
hp=$!
check "the holding query runs" wait_running "select pg_sleep(30) as pol_hold"
out=$(psql -h "$tmp/p" -Atc 'select 1' 2>&1)
check "--max-connections 1: the second is refused ($out)" has "$out" 'too many connections'
kill $hp
wait $hp
stop_proxy pol

# token expiry: tokens live 2 s; a client after that still gets in
start_proxy exp --listen "unix:$tmp/e" --expires-in 2 || bad "proxy (expiry) did not start"
out1=$(psql -h "$tmp/e" -Atc 'select 1' 2>&1)
sleep 4
out2=$(psql -h "$tmp/e" -Atc 'select 2' 2>&1)
check "new clients get in after the first token expired ($out1, $out2)" test "$out1$out2" = 12
stop_proxy exp

# loopback TCP with --trust-loopback (libpq sends SSLRequest and GSSENCRequest first)
start_proxy tcp --listen tcp:127.0.0.1:0 --trust-loopback --print-env || bad "proxy (tcp) did not start"
port=$(sed -n 's/^dsql-proxy: ready on tcp:127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/tcp.err")
out=$(env PGSSLMODE=prefer PGGSSENCMODE=prefer psql -h 127.0.0.1 -p "$port" -Atc 'select 9' 2>&1)
check "TCP with --trust-loopback, sslmode=prefer ($out)" test "$out" = 9
out=$( (. "$tmp/tcp.out"; command psql -Atc 'select 8') 2>&1)
check "TCP with --print-env ($out)" test "$out" = 8
stop_proxy tcp

# loopback TCP with a local password, SCRAM-SHA-256 against a stored
# verifier (made here by an independent implementation: Python's hashlib)
python3 - "$tmp/pw" <<'PYV'
import base64, hashlib, hmac, os, sys
def verifier(password, salt, it=4096):
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, it)
    ck = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    sk = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b = lambda x: base64.b64encode(x).decode()
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (it, b(salt), b(hashlib.sha256(ck).digest()), b(sk))
with open(sys.argv[1], "w") as f:
    f.write("# local passwords\nadmin:%s\n" % verifier("s3cret-local", os.urandom(16)))
PYV
chmod 600 "$tmp/pw"
start_proxy scram --listen tcp:127.0.0.1:0 --client-password-file "$tmp/pw" || bad "proxy (scram) did not start"
port=$(sed -n 's/^dsql-proxy: ready on tcp:127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/scram.err")
out=$(PGPASSWORD=s3cret-local psql -h 127.0.0.1 -p "$port" -Atc 'select current_user' 2>&1)
check "TCP with the right local password (SCRAM) ($out)" test "$out" = admin
out=$(PGPASSWORD=wrong psql -h 127.0.0.1 -p "$port" -Atc 'select 1' 2>&1)
check "TCP with a wrong local password is refused ($out)" has "$out" 'password authentication failed for user "admin"'
out=$(PGPASSWORD=s3cret-local psql -h 127.0.0.1 -p "$port" -U app -Atc 'select 1' 2>&1)
check "TCP as a user with no verifier: the same refusal ($out)" has "$out" 'password authentication failed for user "app"'
stop_proxy scram
check "the local password is not logged" sh -c "! grep -q s3cret-local '$tmp/scram.err'"
# with --allow-user, a TCP client learns it is not allowed only after its password
start_proxy scram2 --listen tcp:127.0.0.1:0 --client-password-file "$tmp/pw" --allow-user app ||
    bad "proxy (scram, allow-user) did not start"
port=$(sed -n 's/^dsql-proxy: ready on tcp:127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/scram2.err")
out=$(PGPASSWORD=wrong psql -h 127.0.0.1 -p "$port" -Atc 'select 1' 2>&1)
check "--allow-user with a wrong local password: only the password refusal ($out)" \
    has "$out" 'password authentication failed for user "admin"'
out=$(PGPASSWORD=s3cret-local psql -h 127.0.0.1 -p "$port" -Atc 'select 1' 2>&1)
check "--allow-user with the right local password: not allowed ($out)" \
    has "$out" 'user "admin" is not allowed through this proxy'
stop_proxy scram2
echo 'admin:md5abcdef' >"$tmp/badpw"
chmod 600 "$tmp/badpw"
out=$("$P" --listen tcp:127.0.0.1:0 --client-password-file "$tmp/badpw" 2>&1)
check "a password file with a non-SCRAM line is refused at start ($out)" has "$out" 'line 1: user admin: not a SCRAM-SHA-256 verifier'

# --log and SIGHUP: a rotated log is reopened
start_proxy log --listen "unix:$tmp/l" --log "$tmp/proxy.log" || bad "proxy (log) did not start"
psql -h "$tmp/l" -U nosuchrole -Atc 'select 1' >/dev/null 2>&1
mv "$tmp/proxy.log" "$tmp/proxy.log.1"
kill -HUP "$(cat "$tmp/log.pid")"
# the proxy acts on the signal when next scheduled, and then says so
check "SIGHUP: the reopen is logged" until_line "$tmp/proxy.log" 'SIGHUP: log reopened'
psql -h "$tmp/l" -U otherrole -Atc 'select 1' >/dev/null 2>&1
check "log lines go to --log" grep -q 'refused user "nosuchrole"' "$tmp/proxy.log.1"
check "SIGHUP reopens the log" grep -q 'refused user "otherrole"' "$tmp/proxy.log"
check "still running after SIGHUP" kill -0 "$(cat "$tmp/log.pid")"
stop_proxy log

# SIGTERM: no new clients, the running query finishes, then exit 0
start_proxy drain --listen "unix:$tmp/t" || bad "proxy (drain) did not start"
# (each step waits for what it needs, not a fixed time: a loaded machine
# once took longer than 0.3 s to act on the signal, and the next psql got in)
psql -h "$tmp/t" -Atc 'select pg_sleep(5), 4' >"$tmp/drain.out" 2>&1 &
qp=$!
check "the holding query runs before SIGTERM" wait_running "select pg_sleep(5)"
kill -TERM "$(cat "$tmp/drain.pid")"
check "SIGTERM: the proxy stops accepting, one session open" \
    until_line "$tmp/drain.err" 'not accepting; waiting for 1 sessions'
out=$(psql -h "$tmp/t" -Atc 'select 1' 2>&1)
check "after SIGTERM new clients are not accepted ($out)" has "$out" 'No such file'
wait $qp
check "the running session finished ($(cat "$tmp/drain.out"))" test "$(cat "$tmp/drain.out")" = "|4"
wait "$(cat "$tmp/drain.pid")"
check "exit 0 after the drain" test $? -eq 0
no_sanitizer_reports
exit $fail
SH

run_inner
exit $fail

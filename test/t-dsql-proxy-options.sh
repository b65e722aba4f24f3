#!/bin/sh
# dsql-proxy's options and start-up checks against a real dsql-local, the
# ones t-dsql-proxy.sh leaves out: files it cannot use (each named with the
# reason), a second proxy on a live socket (refused, the first one's socket
# kept), the upstream as a connection string, the DSQL role of a non-admin
# user (DbConnect), startup parameters passed through, the gateway's own
# SQLSTATE on a refused login, --sslnegotiation (what goes on the wire),
# --auth-timeout before and during login, --drain-timeout, the default
# directory with --allow-uid, and doc/dsql-proxy.service (systemd accepts
# it; the proxy starts with its options).
. "$(dirname "$0")/dsql-proxy-lib.sh"
proxy_script psql

# usage errors (exit 2) need no upstream
long=$(printf 'd%.0s' $(seq 1 300))
usage "the directory name is too long (301 bytes" --listen "unix:/$long"
usage "127.example.com is not an IP address" --listen tcp:127.example.com:5432 --trust-loopback
usage "--listen tcp:127.0.0.1:+80: expected tcp:127.0.0.1:PORT" --listen tcp:127.0.0.1:+80 --trust-loopback
usage "--metrics tcp:127.0.0.1:99999: expected tcp:127.0.0.1:PORT" --metrics tcp:127.0.0.1:99999

cat >"$tmp/raw.py" <<'PY'
import os, socket, struct, sys, time
sys.path.insert(0, os.path.join(os.environ["SRC"], "test"))
from proxy_wire import startup, read_all, running
path = sys.argv[1]; case = sys.argv[2]
def fields(d):
    # the ErrorResponse among the messages (an AuthenticationOk may come first)
    while len(d) >= 5 and d[:1] != b"E":
        d = d[1 + struct.unpack("!I", d[1:5])[0]:]
    if not d.startswith(b"E"): return repr(d[:20])
    return " ".join(f.decode(errors="replace") for f in d[5:].split(b"\0") if f[:1] in (b"C", b"M"))
if path.startswith("tcp:"):
    s = socket.create_connection(("127.0.0.1", int(path[4:])), timeout=30)
else:
    s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(path)
if case == "authreq":    # the proxy's first answer to a startup: which password it asks for
    s.sendall(startup([(b"user", b"admin"), (b"database", b"postgres")]))
    d = b""
    while len(d) < 5 or len(d) < 1 + struct.unpack("!I", d[1:5])[0]:
        b = s.recv(65536)
        if not b: break
        d += b
    print(d[:1].decode(), struct.unpack("!I", d[5:9])[0], d[9:].split(b"\0\0")[0].split(b"\0"))
elif case == "salt":     # the salt and iterations the SCRAM exchange offers user argv[3]
    s.sendall(startup([(b"user", sys.argv[3].encode()), (b"database", b"postgres")]))
    def message():
        d = b""
        while len(d) < 5 or len(d) < 1 + struct.unpack("!I", d[1:5])[0]:
            d += s.recv(65536)
        return d
    message()  # AuthenticationSASL
    first = b"n,,n=,r=fyko+d2lbbFgONRv9qkxdawL"
    body = b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first
    s.sendall(b"p" + struct.pack("!I", len(body) + 4) + body)
    print(message()[9:].split(b",", 1)[1].decode())  # "s=...,i=..."
elif case == "cancel":   # libpq's way: the BackendKeyData key, on a new connection
    s.sendall(startup([(b"user", b"admin"), (b"database", b"postgres")]))
    d = b""; key = None; done = False
    def messages():
        global d
        while True:
            while len(d) >= 5 and len(d) >= 1 + struct.unpack("!I", d[1:5])[0]:
                n = 1 + struct.unpack("!I", d[1:5])[0]; m, d = d[:n], d[n:]
                yield m
            b = s.recv(65536)
            if not b: return
            d += b
    it = messages()
    for m in it:
        if m[:1] == b"K": key = m[5:13]
        if m[:1] == b"Z": break
    q = b"select pg_sleep(30)\0"
    s.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
    # cancel once the query runs upstream, not after a fixed sleep: a
    # cancel that comes first is ignored and the query runs its 30 s
    for i in range(600):
        if running(q[:-1].decode()): break
        time.sleep(0.1)
    c = socket.socket(socket.AF_UNIX); c.connect(path)
    c.sendall(struct.pack("!II", 16, 80877102) + key); c.close()
    err = b""
    for m in it:
        if m[:1] == b"E": err = m
        if m[:1] == b"Z": break
    print(fields(err))
elif case == "silent":     # connects, says nothing
    t = time.time(); d = read_all(s); print(fields(d))
elif case == "login":
    s.sendall(startup([(b"user", sys.argv[3].encode()), (b"database", b"postgres")]))
    print(fields(read_all(s)))
PY

# a forwarder to the gateway that writes, per connection, how the client
# began: its first 8 bytes, and whether its TLS ClientHello names the
# signing host (SNI) and offers ALPN "postgresql"
cat >"$tmp/spy.py" <<'PY'
import os, socket, sys, threading
target = int(os.environ["PGPORT"]); host = os.environ["PGHOST"].encode()
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
log = open(sys.argv[1], "a")
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError:
        pass
    for x in (a, b):
        try: x.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def serve(c):
    u = socket.create_connection(("127.0.0.1", target))
    first = c.recv(65536); u.sendall(first)
    hello = first
    if first[:1] != b"\x16":   # an SSLRequest: the ClientHello follows the answer
        c.sendall(u.recv(1)); hello = c.recv(65536); u.sendall(hello)
    log.write("first=%s sni=%s alpn=%s\n" % (first[:8].hex(), host in hello,
                                           b"\x0apostgresql" in hello)); log.flush()
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    pipe(u, c)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
PY

# the checks, run under one time limit against the gateway started below
cat >"$tmp/inner.sh" <<'SH'
. "$SRC/test/dsql-proxy-lib.sh"
# a start that must fail: exit 1 and a message with the fragment
no_start() { # description, fragment, args...
    d=$1; frag=$2; shift 2
    err=$(timeout 20 "$P" "$@" 2>&1); st=$?
    if [ $st -eq 1 ] && has_text "$err" "$frag"; then pass "$d ($err)"; else bad "$d: exit $st, '$err'"; fi
}
# until process $1 is gone (at most $2 s)
gone_within() {
    i=0
    while kill -0 "$1" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt $(($2 * 10)) ] && return 1
        sleep 0.1
    done
}

# ---- files the proxy cannot use: each named, with the reason ----
no_start "sslrootcert missing" "$tmp/nope.pem (sslrootcert): No such file or directory" \
    --listen "unix:$tmp/x" --sslrootcert "$tmp/nope.pem"
no_start "sslrootcert a directory" "$tmp (sslrootcert): it is a directory" \
    --listen "unix:$tmp/x" --sslrootcert "$tmp"
echo "not a certificate" >"$tmp/junk.pem"
no_start "sslrootcert without a certificate" "no CA certificate in $tmp/junk.pem" \
    --listen "unix:$tmp/x" --sslrootcert "$tmp/junk.pem"
v='SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$qNnAtcdMqRIxQjUtBlmAfYMHfCzPxoxYy3UhckvIuB8=:bx7x+mMULmNuGcaH0TgbSsTsjLo1vqV8JZTgcK0aAZk='
printf 'admin:%s\napp:%s\nadmin:%s\n' "$v" "$v" "$v" >"$tmp/dup.pw"
chmod 600 "$tmp/dup.pw"
no_start "a user twice in the password file" "dup.pw: line 3: user admin has a line already" \
    --listen tcp:127.0.0.1:0 --client-password-file "$tmp/dup.pw"
# 8192 iterations, not the 4096 most verifiers have, so that a stand-in
# for unknown users with fixed parameters would show
printf 'admin:%s\n' "$(echo "$v" | sed 's/\$4096:/$8192:/')" >"$tmp/one.pw"
chmod 600 "$tmp/one.pw"
start_proxy scram --listen tcp:127.0.0.1:0 --client-password-file "$tmp/one.pw" ||
    bad "proxy (client password file) did not start"
port=$(sed -n 's/^dsql-proxy: ready on tcp:127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/scram.err")
out=$(raw "tcp:$port" authreq)
check "a TCP client is asked for SCRAM-SHA-256 only, never a cleartext password ($out)" \
    test "$out" = "R 10 [b'SCRAM-SHA-256']"
# an unknown user's exchange must not give it away: the same salt on every
# try, of the known verifiers' length, with their iteration count
known=$(raw "tcp:$port" salt admin)
u1=$(raw "tcp:$port" salt nosuchuser)
u2=$(raw "tcp:$port" salt nosuchuser)
o=$(raw "tcp:$port" salt otheruser)
check "an unknown user's SCRAM salt is the same on every try ($u1, $u2)" test "$u1" = "$u2"
check "... differs from another unknown user's ($o)" test "$u1" != "$o"
check "... and looks like a known user's ($known)" \
    test "${#u1}" = "${#known}" -a "${u1##*,}" = "${known##*,}"
stop_proxy scram
no_start "a directory as the password file" "cannot read $tmp: it is a directory" \
    --listen tcp:127.0.0.1:0 --client-password-file "$tmp"

# ---- a second proxy on the same directory ----
start_proxy main --listen "unix:$tmp/s" || { echo "FAIL proxy did not start"; exit 1; }
no_start "a second proxy on a live socket is refused" "$tmp/s/.s.PGSQL.5432 is in use by another server" \
    --listen "unix:$tmp/s"
out=$(psql -h "$tmp/s" -Atc 'select 1' 2>&1)
check "the first proxy still serves: its socket was not removed ($out)" test "$out" = 1
mkdir "$tmp/f"
echo keep >"$tmp/f/.s.PGSQL.5432"
no_start "a file where the socket goes is refused" "$tmp/f/.s.PGSQL.5432 exists and is not a socket" \
    --listen "unix:$tmp/f"
check "... and left alone" grep -qx keep "$tmp/f/.s.PGSQL.5432"

# ---- the DSQL role: a non-admin user signs DbConnect ----
out=$(psql -h "$tmp/s" -Atc 'create role reader login' 2>&1)
check "admin creates a role through the proxy ($out)" test "$out" = "CREATE ROLE"
out=$(psql -h "$tmp/s" -U reader -Atc 'select current_user' 2>&1)
check "a non-admin user logs in (DbConnect) ($out)" test "$out" = reader
out=$(raw "$tmp/s/.s.PGSQL.5432" login nosuchrole)
check "an unknown role: PostgreSQL's own 28000 and message ($out)" test "$out" = \
    'C28000 Mrole "nosuchrole" does not exist'

# ---- startup parameters pass through ----
out=$(PGAPPNAME=proxy-audit PGOPTIONS='-c statement_timeout=4321' psql -h "$tmp/s" \
    -Atc 'show application_name' -c 'show statement_timeout' 2>&1 | tr '\n' ' ')
check "application_name and options reach the upstream ($out)" test "$out" = "proxy-audit 4321ms "
stop_proxy main

# ---- the upstream as a connection string, options over the environment ----
conn="host=$PGHOST hostaddr=$PGHOSTADDR port=$PGPORT sslrootcert=$PGSSLROOTCERT"
(unset PGHOST PGHOSTADDR PGPORT PGSSLROOTCERT; start_proxy conn --listen "unix:$tmp/c" "$conn") ||
    bad "proxy (connection string) did not start"
out=$(psql -h "$tmp/c" -Atc 'select 2' 2>&1)
check "upstream from a connection string, no PG* variables ($out)" test "$out" = 2
stop_proxy conn
(PGPORT=1 start_proxy opt --listen "unix:$tmp/o" --port "$PGPORT") || bad "proxy (--port) did not start"
out=$(psql -h "$tmp/o" -Atc 'select 3' 2>&1)
check "--port wins over PGPORT ($out)" test "$out" = 3
stop_proxy opt

# ---- a refused login: the gateway's own SQLSTATE and message ----
(AWS_SECRET_ACCESS_KEY=wrong-secret-abc start_proxy badkey --listen "unix:$tmp/k") ||
    bad "proxy (wrong secret) did not start"
out=$(raw "$tmp/k/.s.PGSQL.5432" login admin)
check "the gateway's 28P01 and message reach the client ($out)" test "$out" = \
    'C28P01 MIAM authentication failed for user "admin": The request signature we calculated does not match the signature you provided'
stop_proxy badkey
check "the secret is in no log line" sh -c "! grep -q wrong-secret-abc '$tmp/badkey.err'"

# ---- --sslnegotiation: what the upstream sees ----
python3 "$tmp/spy.py" "$tmp/spy.log" >"$tmp/spyport" &
sp=$!
until_line "$tmp/spyport" . || bad "spy.py did not start"
spyport=$(cat "$tmp/spyport")
for mode in postgres direct; do
    : >"$tmp/spy.log"
    start_proxy neg --listen "unix:$tmp/n" --hostaddr 127.0.0.1 --port "$spyport" \
        --sslnegotiation $mode || bad "proxy (--sslnegotiation $mode) did not start"
    out=$(psql -h "$tmp/n" -Atc "select '$mode'" 2>&1)
    check "--sslnegotiation $mode logs in ($out)" test "$out" = $mode
    stop_proxy neg
    seen=$(cat "$tmp/spy.log")
    case $mode in
    postgres) want="first=0000000804d2162f sni=True alpn=False" ;; # SSLRequest, then TLS
    direct) want="first=160301" ;;                                 # a TLS record at once
    esac
    check "--sslnegotiation $mode on the wire ($seen)" sh -c 'case "$1" in "$2"*) exit 0;; esac; exit 1' - "$seen" "$want"
done
check "direct TLS: SNI is the signing host, ALPN postgresql ($seen)" has_text "$seen" "sni=True alpn=True"
# a cancel goes upstream over a new TLS connection, never as a plaintext CancelRequest
: >"$tmp/spy.log"
start_proxy neg --listen "unix:$tmp/n" --hostaddr 127.0.0.1 --port "$spyport" ||
    bad "proxy (cancel through the spy) did not start"
out=$(raw "$tmp/n/.s.PGSQL.5432" cancel)
check "a cancel through the proxy ($out)" test "$out" = "C57014 Mcanceling statement due to user request"
stop_proxy neg
seen=$(tr '\n' ' ' <"$tmp/spy.log")
check "the cancel went upstream over TLS: two connections, each an SSLRequest with SNI ($seen)" \
    test "$(grep -c '^first=0000000804d2162f sni=True' "$tmp/spy.log") $(wc -l <"$tmp/spy.log")" = "2 2"
kill $sp

# ---- --auth-timeout: a silent client, a login that never ends ----
start_proxy auth --listen "unix:$tmp/a" --auth-timeout 1 || bad "proxy (auth-timeout) did not start"
out=$(raw "$tmp/a/.s.PGSQL.5432" silent)
check "a client that sends nothing is closed with 08006 ($out)" test "$out" = \
    "C08006 Mdsql-proxy: the startup packet did not arrive in time"
stop_proxy auth
python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' >"$tmp/mport" &
mp=$!
until_line "$tmp/mport" . || bad "the mute upstream did not start"
start_proxy mute --listen "unix:$tmp/m" --hostaddr 127.0.0.1 --port "$(cat "$tmp/mport")" \
    --auth-timeout 2 || bad "proxy (mute upstream) did not start"
out=$(psql -h "$tmp/m" -Atc 'select 1' 2>&1)
check "an upstream that never answers: the login times out ($out)" has_text "$out" \
    "dsql-proxy: login did not finish in time"
stop_proxy mute
kill $mp

# ---- --drain-timeout: SIGTERM waits this long, then closes the sessions ----
start_proxy drain --listen "unix:$tmp/d" --drain-timeout 2 || bad "proxy (drain-timeout) did not start"
psql -h "$tmp/d" -Atc 'select pg_sleep(30), 4' >"$tmp/drain.out" 2>&1 &
qp=$!
check "the long query runs" wait_running "select pg_sleep(30)"
kill -TERM "$(cat "$tmp/drain.pid")"
check "the proxy exits at the drain timeout, not when the query ends" gone_within "$(cat "$tmp/drain.pid")" 20
wait "$(cat "$tmp/drain.pid")"
check "exit 0 after the drain timeout" test $? -eq 0
check "the drain timeout is logged" grep -q "1 sessions still open after 2 s; closing them" "$tmp/drain.err"
wait $qp
check "the session was closed, not answered ($(cat "$tmp/drain.out"))" has_text "$(cat "$tmp/drain.out")" "server closed the connection"

# ---- the default directory with --allow-uid: reachable, not listable ----
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    start_proxy uid --allow-uid 65534 --print-env || bad "proxy (default dir, --allow-uid) did not start"
    dir=$(sed -n "s/^export PGHOST='\(.*\)'$/\1/p" "$tmp/uid.out")
    check "default directory with --allow-uid is 0711 ($dir)" sh -c "[ \"\$(stat -c %a '$dir')\" = 711 ]"
    out=$(cd / && setpriv --reuid=65534 --regid=65534 --clear-groups env -u PGHOSTADDR -u PGSSLMODE -u PGSSLROOTCERT -u PGPORT HOME=/ psql -X -h "$dir" -Atc 'select 6' 2>&1)
    check "the allowed uid gets in through the default directory ($out)" test "$out" = 6
    stop_proxy uid
else
    echo "skip --allow-uid default directory (needs root and setpriv)"
fi
# ---- the example systemd unit: systemd reads it, the proxy takes its options ----
unit=$SRC/doc/dsql-proxy.service
args=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$unit" | sed 's/^ExecStart=[^ ]*//; s/\\$//' | tr '\n' ' ')
mkdir -m 700 "$tmp/rt"
# %t: the user's runtime directory; the unit's cluster has no credentials here
(set -f; start_proxy unit $(echo "$args" | sed "s|%t|$tmp/rt|g")) ||
    bad "the unit's ExecStart options ($args) do not start the proxy"
check "the unit's socket is where its comment says (%t/dsql)" test -S "$tmp/rt/dsql/.s.PGSQL.5432"
stop_proxy unit
if command -v systemd-analyze >/dev/null; then
    sed "s|^ExecStart=[^ ]*|ExecStart=$P|" "$unit" >"$tmp/dsql-proxy.service"
    out=$(cd "$tmp" && systemd-analyze verify ./dsql-proxy.service 2>&1)
    check "systemd-analyze verify: no complaint (${out})" test -z "$out"
else
    echo "skip systemd-analyze verify (not installed)"
fi
no_sanitizer_reports
exit $fail
SH

run_inner
exit $fail

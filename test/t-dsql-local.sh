#!/bin/sh
# dsql-local: IAM token checks through the gateway with psql + dsql-token,
# the connection-duration limit, run/stop hygiene, bad input and a short
# load test. Loopback only.
. "$(dirname "$0")/dsql-local-lib.sh"
need_pg15 psql
make_tmp
cat >"$tmp/raw.py" <<'PY'
import hashlib, hmac, os, socket, ssl, struct, subprocess, sys, time
from urllib.parse import quote

def sign(host, region, user, when):
    # an independent SigV4 presigner, so tests can also make tokens dsql-token will not
    akid = os.environ["AWS_ACCESS_KEY_ID"]; secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    amz = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when)); day = amz[:8]
    scope = "%s/%s/dsql/aws4_request" % (day, region)
    p = {"Action": "DbConnectAdmin" if user == "admin" else "DbConnect",
         "X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": akid + "/" + scope,
         "X-Amz-Date": amz, "X-Amz-Expires": "900", "X-Amz-SignedHeaders": "host"}
    if os.environ.get("AWS_SESSION_TOKEN"):
        p["X-Amz-Security-Token"] = os.environ["AWS_SESSION_TOKEN"]
    q = "&".join("%s=%s" % (quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in sorted(p.items()))
    creq = "\n".join(["GET", "/", q, "host:%s\n" % host.lower(), "host", hashlib.sha256(b"").hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for m in (day, region, "dsql", "aws4_request"):
        k = hmac.new(k, m.encode(), hashlib.sha256).digest()
    return "%s/?%s&X-Amz-Signature=%s" % (host, q, hmac.new(k, sts.encode(), hashlib.sha256).hexdigest())

if sys.argv[1] == "sign":
    print(sign(sys.argv[2], sys.argv[3], sys.argv[4], time.time()))
    sys.exit(0)

port = int(os.environ["PGPORT"]); host = os.environ["PGHOST"]
ca = os.environ["PGSSLROOTCERT"]

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as libpq does
    return s

def recv_all(s, limit=65536):
    data = b""
    try:
        while len(data) < limit:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (ConnectionResetError, socket.timeout, ssl.SSLError, OSError):
        pass
    return data

def startup(user="admin", db="postgres", extra=b""):
    body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0" + extra + b"\0"
    return struct.pack("!I", len(body) + 4) + body

def tls(s, sni=host, alpn=None):
    ctx = ssl.create_default_context(cafile=ca)
    if sni is None:
        ctx.check_hostname = False
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx.wrap_socket(s, server_hostname=sni)

def sslrequest(s):
    s.sendall(struct.pack("!II", 8, 80877103))
    return s.recv(1)

def backend_running(sql):
    # pg_stat_activity (through psql, with this environment) shows sql running
    q = "select count(*) from pg_stat_activity where state = 'active' and query = '%s'" % sql
    out = subprocess.run(["psql", "-X", "-At", "-c", q], capture_output=True, text=True).stdout
    return out.strip() == "1"

def closed_by_auth_timeout(t0):
    # the 2 s auth timeout closed it: not sooner (the server's clock started
    # a little before t0), and before our own 30 s socket timeout gave up;
    # a loaded machine may only make it later
    dt = time.time() - t0
    return ("closed by the server after %.1f s" if 1.5 <= dt < 29.5 else "closed after %.1f s") % dt

def error_text(data):
    if not data.startswith(b"E"):
        return None
    return data[5:].replace(b"\0", b"|").decode(errors="replace")

case = sys.argv[1]
if case == "garbage":
    s = conn(); s.sendall(os.urandom(3000)); print("closed" if recv_all(s) is not None else "?")
elif case == "truncated":
    s = conn(); s.sendall(startup()[:6]); s.close(); print("sent")
elif case == "truncated-tls":
    s = conn(); sslrequest(s); t = tls(s); t.sendall(startup()[:10]); t.close(); print("sent")
elif case == "huge-startup":
    s = conn(); s.sendall(struct.pack("!II", 10 * 1024 * 1024, 196608)); print(error_text(recv_all(s)))
elif case == "huge-startup-tls":
    s = conn(); sslrequest(s); t = tls(s)
    t.sendall(struct.pack("!II", 100000, 196608) + b"x" * 1000); print(error_text(recv_all(t)))
elif case == "gssenc":
    s = conn(); s.sendall(struct.pack("!II", 8, 80877104)); r = s.recv(1)
    print("answer", r.decode()); print("then ssl", sslrequest(s).decode())
elif case == "direct-tls":
    s = conn(); t = tls(s, alpn=["postgresql"]); t.sendall(startup())
    r = t.recv(9); print("alpn", t.selected_alpn_protocol(), "auth", struct.unpack("!cII", r))
elif case == "no-sni":
    s = conn(); sslrequest(s); t = tls(s, sni=None); t.sendall(startup()); print(error_text(recv_all(t)))
elif case == "huge-password":
    s = conn(); sslrequest(s); t = tls(s); t.sendall(startup()); t.recv(9)
    t.sendall(b"p" + struct.pack("!I", 70005) + b"a" * 1000); print(error_text(recv_all(t)))
elif case == "wrong-message":
    s = conn(); sslrequest(s); t = tls(s); t.sendall(startup()); t.recv(9)
    t.sendall(b"Q" + struct.pack("!I", 13) + b"select 1\0"); print(error_text(recv_all(t)))
elif case == "stall":
    s = conn(); t0 = time.time(); d = recv_all(s); print(closed_by_auth_timeout(t0))
elif case == "stall-tls":
    s = conn(); sslrequest(s); t0 = time.time(); d = recv_all(s); print(closed_by_auth_timeout(t0))
elif case == "stall-auth":
    s = conn(); sslrequest(s); t = tls(s); t.sendall(startup()); t.recv(9); t0 = time.time()
    d = recv_all(t); print("closed after %.0f s:" % (time.time() - t0), error_text(d))
elif case == "mid-relay":
    s = conn(); sslrequest(s); t = tls(s); t.sendall(startup()); t.recv(9)
    pw = os.environ["PGPASSWORD"].encode()
    t.sendall(b"p" + struct.pack("!I", len(pw) + 5) + pw + b"\0")
    time.sleep(0.3)
    t.sendall(b"Q" + struct.pack("!I", 29) + b"select pg_sleep(2) , 1 , 2\0"[:25])
    s.close(); print("dropped")
elif case == "fuzz":
    # mutated tokens and startup packets: each must get a clean answer
    import random
    rnd = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    good = os.environ["PGPASSWORD"]
    alphabet = "%&=/?0123456789abcdefABCDEF-_.~XAmzDbConnect\x00\xff"
    answers = {}
    for i in range(int(os.environ.get("FUZZ_N", "300"))):
        tok = list(good)
        for _ in range(rnd.randint(1, 4)):
            op = rnd.randint(0, 3); pos = rnd.randrange(len(tok) + 1)
            if op == 0 and tok: del tok[min(pos, len(tok) - 1)]
            elif op == 1: tok.insert(pos, rnd.choice(alphabet))
            elif op == 2 and tok: tok[min(pos, len(tok) - 1)] = rnd.choice(alphabet)
            else: tok = tok[:pos]
        pw = "".join(tok).encode("latin-1")
        extra = b""
        if rnd.random() < 0.2:
            extra = bytes(rnd.randrange(1, 256) for _ in range(rnd.randrange(0, 40))) + b"\0x\0"
        s = conn(); sslrequest(s); t = tls(s)
        pkt = startup(extra=extra)
        t.sendall(pkt)
        first = t.recv(1)
        if first == b"R":
            t.recv(8)
            t.sendall(b"p" + struct.pack("!I", len(pw) + 5) + pw + b"\0")
            reply = recv_all(t)
            key = "ok" if reply.startswith(b"R\0\0\0\x08\0\0\0\0") else \
                (error_text(reply) or "?").split(":")[-1][:50]
        else:
            key = "startup:" + ((error_text(first + recv_all(t)) or "closed")[:40])
        answers[key] = answers.get(key, 0) + 1
        t.close()
    bad = [k for k in answers if k == "?" or k.startswith("startup:closed")]
    print("answers:", len(answers), "kinds;", "unanswered:", sum(answers[k] for k in bad), "ok:", answers.get("ok", 0))
elif case == "cancel-tls":
    # log in, read BackendKeyData, start a long query, cancel it over a
    # second TLS connection (as libpq 17 does)
    s = conn(); sslrequest(s); t = tls(s); t.sendall(startup()); t.recv(9)
    pw = os.environ["PGPASSWORD"].encode()
    t.sendall(b"p" + struct.pack("!I", len(pw) + 5) + pw + b"\0")
    buf = b""; key = None
    while not buf.endswith(b"Z\0\0\0\x05I"):
        buf += t.recv(4096)
    i = 0
    while i < len(buf):
        typ = buf[i:i + 1]; ln = struct.unpack("!I", buf[i + 1:i + 5])[0]
        if typ == b"K": key = buf[i + 5:i + 13]
        i += 1 + ln
    q = b"select pg_sleep(15)\0"
    t.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
    # cancel once the backend shows the query running, not after a fixed
    # sleep: a cancel that comes first is ignored (the backend is idle)
    for _ in range(600):
        if backend_running(q[:-1].decode()):
            break
        time.sleep(0.1)
    c = conn(); sslrequest(c); ct = tls(c); ct.sendall(struct.pack("!II", 16, 80877102) + key); ct.close()
    t0 = time.time(); reply = b""
    try:
        while b"57014" not in reply:
            d = t.recv(4096)
            if not d: break
            reply += d
    except socket.timeout:
        pass
    print("cancelled after %.1f s" % (time.time() - t0) if b"57014" in reply else "not cancelled")
elif case == "cancel-garbage":
    s = conn(); s.sendall(struct.pack("!IIII", 16, 80877102, 1, 2)); print("closed" if recv_all(s) == b"" else "?")
PY
stop_on_exit a b c

H1=abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws
H2=zyxwvutsrqponmlkjihgfedcba.dsql.us-east-1.on.aws
OTHER=otherclusteraaaaaaaaaaaaaa.dsql.us-east-1.on.aws
cat >"$tmp/keys" <<KEYS
# test keys
AKIALOCALTEST0000001 localTestSecret/0000000000000000000000001
ASIALOCALTEST0000002 localTestSecret/0000000000000000000000002 FwoGZXIvYXdzEXAMPLESESSIONTOKEN/+==
KEYS
chmod 600 "$tmp/keys"
unset AWS_PROFILE AWS_DEFAULT_REGION AWS_SESSION_TOKEN PGPASSWORD PGSERVICE PGOPTIONS

# ---- instance A: two names, the key table above, short auth timeout ----
# (started with descriptor 7 open on a file: the server must not keep it)
start_local a --hostname "$H1" --hostname "$H2" --keys "$tmp/keys" 7>"$tmp/inherited"
# instance B: 2 s auth timeout, 3 s connection limit, for the stall tests
start_local b --hostname "$H1" --auth-timeout 2 --max-connection-duration 3
. "$tmp/a.env"
pass "start printed the environment (port $PGPORT)"
for v in PGHOST PGHOSTADDR PGPORT PGSSLMODE PGSSLROOTCERT PGUSER PGDATABASE AWS_REGION \
         AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; do
    grep -q "^export $v=" "$tmp/a.env" || bad "start output lacks $v"
done
[ "$PGHOST" = "$H1" ] && [ "$PGSSLMODE" = verify-full ] && [ "$PGHOSTADDR" = 127.0.0.1 ] &&
    [ "$AWS_ACCESS_KEY_ID" = AKIALOCALTEST0000001 ] && pass "exports name the first host and key" ||
    bad "unexpected exports"
DAEMON=$(head -1 "$tmp/a/dsql-local.pid")
# a descriptor the server inherited would stay open as long as it runs (a
# pipe's reader waiting for its end would wait for the server to stop)
kept=$(ls -l /proc/"$DAEMON"/fd | grep -c "$tmp/inherited")
[ "$kept" = 0 ] && pass "the server keeps no descriptor it inherited" ||
    bad "the server kept its parent's descriptor 7 ($kept)"
out=$("$L" start --state-dir "$tmp/a" 2>&1); st=$?
[ $st -eq 1 ] && echo "$out" | grep -q "already running in $tmp/a" && pass "a second start on the same state dir is refused" ||
    bad "second start: $st $out"
out=$("$L" start --state-dir "$tmp/busy" --port "$PGPORT" 2>&1); st=$?
[ $st -eq 1 ] && echo "$out" | grep -q "cannot listen on 127.0.0.1:$PGPORT" && [ ! -e "$tmp/busy" ] &&
    pass "a busy --port fails cleanly" || bad "busy port: $st $out"
out=$("$L" stop --state-dir "$tmp/none" 2>&1); st=$?
[ $st -eq 1 ] && echo "$out" | grep -q "not running" && pass "stop without a server says so" || bad "stop: $st $out"

iso() { date -u -d "@$(( $(date +%s) + $1 ))" +%Y-%m-%dT%H:%M:%SZ; }
# q DESCRIPTION EXPECTED-STDOUT-or-! FRAGMENT [env assignments...] -- dsql-token args
# Runs psql with a token; checks the output (or, with !, that login fails
# with FRAGMENT in the message).
try() {
    desc=$1; want=$2; shift 2
    envs=""
    while [ "$1" != "--" ]; do envs="$envs $1"; shift; done
    shift
    tok=$(env $envs "$T" "$@" 2>"$tmp/tok.err") || { bad "$desc: dsql-token failed: $(cat "$tmp/tok.err")"; return; }
    out=$(env $envs PGPASSWORD="$tok" psql -X -At -c "select current_user" 2>&1)
    case $want in
    !*) frag=${want#!}
        if echo "$out" | grep -qF -- "$frag"; then
            if echo "$out" | grep -qF -- "X-Amz-Signature"; then bad "$desc: message echoes the token"
            else pass "$desc: refused: $(echo "$out" | sed 's/.*FATAL: *//' | head -1)"; fi
        else bad "$desc: wanted '$frag', got: $out"; fi ;;
    *)  if [ "$out" = "$want" ]; then pass "$desc"; else bad "$desc: got: $out"; fi ;;
    esac
}

try "valid admin token logs in" admin -- --hostname "$H1"
PGPASSWORD=$("$T" --hostname "$H1") psql -X -q -c "create role app login" 2>/dev/null
try "valid DbConnect token for a non-admin role" app PGUSER=app -- --hostname "$H1" --user app
try "upper-case host name in the token" admin -- --hostname "$(echo "$H1" | tr a-z A-Z)"
try "expired token" '!Token has expired' -- --hostname "$H1" --time "$(iso -3600)" --expires-in 900
try "future-dated token" '!Token is not yet valid' -- --hostname "$H1" --time "$(iso 3600)"
try "token within clock skew" admin -- --hostname "$H1" --time "$(iso 60)"
try "wrong-host token" '!signed for a different host' -- --hostname "$OTHER"
try "token for one served host refused on the other" '!signed for a different host' PGHOST=$H2 -- --hostname "$H1"
try "token for the second name works there" admin PGHOST=$H2 -- --hostname "$H2"
try "wrong-secret token" '!signature we calculated does not match' \
    AWS_SECRET_ACCESS_KEY=localTestSecret/0000000000000000000000009 -- --hostname "$H1"
try "unknown-key token" '!does not exist in our records' AWS_ACCESS_KEY_ID=AKIAUNKNOWNKEY000000 -- --hostname "$H1"
try "temporary key with its session token" admin AWS_ACCESS_KEY_ID=ASIALOCALTEST0000002 \
    AWS_SECRET_ACCESS_KEY=localTestSecret/0000000000000000000000002 \
    AWS_SESSION_TOKEN=FwoGZXIvYXdzEXAMPLESESSIONTOKEN/+== -- --hostname "$H1"
try "missing-session-token token" '!no X-Amz-Security-Token' AWS_ACCESS_KEY_ID=ASIALOCALTEST0000002 \
    AWS_SECRET_ACCESS_KEY=localTestSecret/0000000000000000000000002 -- --hostname "$H1"
try "wrong session token" '!security token included in the request is invalid' \
    AWS_ACCESS_KEY_ID=ASIALOCALTEST0000002 AWS_SECRET_ACCESS_KEY=localTestSecret/0000000000000000000000002 \
    AWS_SESSION_TOKEN=FwoGZXIvYXdzOTHERTOKEN -- --hostname "$H1"
try "session token on a long-term key" '!security token included in the request is invalid' \
    AWS_SESSION_TOKEN=FwoGZXIvYXdzEXAMPLESESSIONTOKEN/+== -- --hostname "$H1"
# dsql-token reads PGUSER too (as libpq does): --user admin signs the admin action
try "admin-action token for a non-admin role" '!DbConnectAdmin is only allowed for the admin role' \
    PGUSER=app -- --hostname "$H1" --user admin
try "DbConnect token for admin" '!requires Action DbConnectAdmin' -- --hostname "$H1" --user app

# tokens from an independent SigV4 signer (python), incl. one dsql-token refuses to make
pytok() { python3 "$tmp/raw.py" sign "$@"; }
out=$(PGPASSWORD=$(pytok "$H1" us-east-1 admin) psql -X -At -c "select current_user" 2>&1)
[ "$out" = admin ] && pass "token from an independent SigV4 signer logs in" || bad "python token: $out"
out=$(PGPASSWORD=$(pytok "$H1" us-west-2 admin) psql -X -At -c "select 1" 2>&1)
echo "$out" | grep -q "scoped to a valid region" && pass "wrong-region token: refused: $(echo "$out" | sed 's/.*FATAL: *//')" ||
    bad "wrong-region token: $out"

expect_msg() { # description, fragment, psql args...
    desc=$1; frag=$2; shift 2
    out=$(PGPASSWORD=${PW:-notatoken} psql -X -At "$@" -c "select 1" 2>&1)
    if echo "$out" | grep -qF -- "$frag"; then pass "$desc"; else bad "$desc: wanted '$frag', got: $out"; fi
}
expect_msg "a plain password is refused" "is not an IAM authentication token"
expect_msg "plaintext startup is refused" "TLS is required" "sslmode=disable"
expect_msg "TLS without SNI is refused" "sni was not received" "sslsni=0 sslmode=require"
expect_msg "unknown cluster name is refused" "no cluster is named localhost" "host=localhost sslmode=require"
PW=$("$T" --hostname "$H1") expect_msg "transactions are REPEATABLE READ" "1" \
    -c "show default_transaction_isolation" -c "select 1"

# snapshot isolation: a write-write conflict fails with SQLSTATE 40001
export PGPASSWORD="$("$T" --hostname "$H1")"
psql -X -q -c "create table occ(id int primary key, v int)" 2>&1
psql -X -q -c "insert into occ values (1, 0)" 2>&1
# the first transaction takes its snapshot, then waits (by files, not by
# sleeping, so a loaded machine cannot reorder the two) until the second
# writer has committed
{ printf 'begin;\nselect v from occ;\n\\! touch %s/occ.snap\n' "$tmp"; await occ.done
  printf 'update occ set v = v + 1 where id = 1;\ncommit;\n'; } |
    psql -X -q -v VERBOSITY=verbose >"$tmp/occ.out" 2>&1 &
occ=$!
until_file occ.snap
psql -X -q -c "update occ set v = v + 10 where id = 1"
touch "$tmp/occ.done"
wait $occ
grep -q "40001" "$tmp/occ.out" && pass "concurrent update fails with SQLSTATE 40001" ||
    bad "no serialization failure: $(cat "$tmp/occ.out")"
unset PGPASSWORD

# cancel: psql sends a CancelRequest (plaintext, libpq 15) on SIGINT, here
# once the backend shows the query running: a fixed delay could end before
# psql has logged in on a loaded machine, and the cancel would miss
export PGPASSWORD="$("$T" --hostname "$H1")"
psql -X -v VERBOSITY=verbose -c "select pg_sleep(60)" >"$tmp/cancel.out" 2>&1 &
cancel=$!
until_sql 1 "select count(*) from pg_stat_activity where state = 'active' and query = 'select pg_sleep(60)'"
kill -INT $cancel
wait $cancel
grep -q "ERROR:  57014: canceling statement due to user request" "$tmp/cancel.out" &&
    pass "cancel request reaches the backend (57014)" || bad "cancel: $(cat "$tmp/cancel.out")"
unset PGPASSWORD

# ---- raw protocol and bad input (python3) ----
# timeout: a guard against a hang, wide enough for 300 TLS logins (fuzz) on
# a loaded machine
raw() { PGPASSWORD=${PW:-} timeout 120 python3 "$tmp/raw.py" "$1" 2>&1; }
expect_raw() { # description, case, fragment
    out=$(raw "$2")
    if echo "$out" | grep -qF -- "$3"; then pass "$1: $(echo "$out" | tail -1)"; else bad "$1: wanted '$3', got: $out"; fi
}
expect_raw "GSSENC request answered N, SSLRequest after it" gssenc "then ssl S"
expect_raw "direct TLS (ALPN postgresql) gets AuthenticationCleartextPassword" direct-tls "alpn postgresql auth (b'R', 8, 3)"
expect_raw "raw TLS without SNI" no-sni "sni was not received"
expect_raw "garbage bytes: closed" garbage "closed"
expect_raw "truncated startup packet" truncated "sent"
expect_raw "truncated startup packet inside TLS" truncated-tls "sent"
expect_raw "huge plaintext startup packet" huge-startup "invalid startup packet length"
expect_raw "huge startup packet inside TLS" huge-startup-tls "invalid startup packet length"
expect_raw "password packet > 64 KiB" huge-password "password packet is too large"
expect_raw "a query instead of a password" wrong-message "expected a password response"
expect_raw "bogus cancel request: closed" cancel-garbage "closed"
(
    . "$tmp/b.env"
    expect_raw "client stalls before TLS: closed by the auth timeout" stall "closed by the server"
    expect_raw "client stalls after SSLRequest: closed" stall-tls "closed by the server"
    expect_raw "client stalls at the password: timed out" stall-auth "authentication timed out"
    out=$(PGPASSWORD=$("$T" --hostname "$PGHOST") psql -X -At -c "select 42" -c "select pg_sleep(6)" 2>&1)
    echo "$out" | grep -q "^42" && echo "$out" | grep -q "maximum connection duration of 3 s reached" &&
        pass "connection-duration limit ends the session with a FATAL notice" || bad "duration limit: $out"
    # the whole PostgreSQL gone: the gateway answers, stop still cleans up
    pm=$(head -1 "$tmp/b/pg/data/postmaster.pid")
    kill -KILL "$pm"
    # gone (its socket with it) when next scheduled, not when kill returns
    until_true eval '! alive "$pm"'
    out=$(PGPASSWORD=$("$T" --hostname "$PGHOST") psql -X -At -c "select 1" 2>&1)
    echo "$out" | grep -q "the database is not available" &&
        pass "PostgreSQL killed: logins get a clear error" || bad "postmaster killed: $out"
    exit $fail
) || fail=1
"$L" stop --state-dir "$tmp/b" && [ ! -e "$tmp/b" ] && pass "stop after PostgreSQL died cleans up" || bad "stop B"
PW=$("$T" --hostname "$H1") expect_raw "client drops mid-relay" mid-relay "dropped"
PW=$("$T" --hostname "$H1") expect_raw "CancelRequest inside TLS reaches the backend" cancel-tls "cancelled after"
PW=$("$T" --hostname "$H1") expect_raw "300 mutated tokens / startup packets each answered" fuzz "unanswered: 0"
out=$(PGPASSWORD=$("$T" --hostname "$H1") psql -X -At -c "select pg_terminate_backend(pg_backend_pid())" 2>&1)
echo "$out" | grep -q "terminating connection due to administrator command" &&
    pass "backend death is reported and the session closed" || bad "backend death: $out"
# a backend killed outright (PostgreSQL then restarts every backend)
PGPASSWORD=$("$T" --hostname "$H1") psql -X -At -c "select pg_backend_pid()" -c "select pg_sleep(20)" \
    >"$tmp/victim.out" 2>&1 &
victim=$!
until_line "$tmp/victim.out" .
kill -KILL "$(head -1 "$tmp/victim.out")" 2>/dev/null
wait $victim
grep -q "server closed the connection\|connection to server was lost\|terminating connection" "$tmp/victim.out" &&
    pass "client of a killed backend sees the connection end" || bad "killed backend: $(cat "$tmp/victim.out")"
logs_in() { PGPASSWORD=$("$T" --hostname "$H1") psql -X -At -c "select 1" >/dev/null 2>&1; }
until_true logs_in && pass "logins work again after PostgreSQL's crash recovery" || bad "no login after the backend crash"
try "gateway still serves after all of that" admin -- --hostname "$H1"

# ---- load: 200 concurrent logins + queries ----
fds_before=$(ls /proc/"$DAEMON"/fd | wc -l)
tok=$("$T" --hostname "$H1")
start_s=$(date +%s)
i=0
while [ $i -lt 200 ]; do
    PGPASSWORD=$tok psql -X -At -c "select $i, count(*) from pg_class" >"$tmp/load.$i" 2>&1 &
    i=$((i + 1))
done
wait
okc=$(cat "$tmp"/load.* | grep -c '^[0-9]*|[0-9]*$')
el=$(( $(date +%s) - start_s ))
[ "$okc" -eq 200 ] && pass "200 concurrent clients logged in and queried (${el}s)" ||
    { bad "load: only $okc of 200 succeeded"; grep -hv '^[0-9]*|' "$tmp"/load.* | sort | uniq -c | head -5; }
# the gateway closes each client's backend connection as it sees the client
# go; give a loaded machine up to 30 s to catch up before counting
n=0
while fds_after=$(ls /proc/"$DAEMON"/fd | wc -l); [ "$fds_after" -gt "$fds_before" ] && [ $n -lt 300 ]; do
    sleep 0.1; n=$((n + 1))
done
[ "$fds_after" -le "$fds_before" ] && pass "no leaked descriptors ($fds_before before, $fds_after after)" ||
    bad "descriptors: $fds_before before, $fds_after after"

# ---- optional soak: DSQL_LOCAL_SOAK=60 (seconds), needs make build/bench/gateway-bench ----
if [ -n "${DSQL_LOCAL_SOAK:-}" ] && [ -x "$B/bench/gateway-bench" ]; then
    rss0=$(awk '/VmRSS/ {print $2}' /proc/"$DAEMON"/status)
    out=$("$B/bench/gateway-bench" --token --query --threads 8 --seconds "$DSQL_LOCAL_SOAK" 2>&1)
    sleep 1
    fds=$(ls /proc/"$DAEMON"/fd | wc -l)
    rss1=$(awk '/VmRSS/ {print $2}' /proc/"$DAEMON"/status)
    echo "$out" | grep -q "failed=0" && [ "$fds" -le "$fds_before" ] &&
        pass "soak ${DSQL_LOCAL_SOAK}s: $out; fds $fds; RSS ${rss0} -> ${rss1} kB" ||
        bad "soak: $out; fds $fds (was $fds_before)"
fi

# ---- stop ----
"$L" stop --state-dir "$tmp/a" && [ ! -e "$tmp/a" ] && pass "stop removed the state directory" ||
    bad "stop left $tmp/a"
until_true eval '! alive "$DAEMON"'
alive "$DAEMON" && bad "daemon still running after stop" || pass "daemon exited"
ps -eo args | grep -v grep | grep -qF "$tmp/a/pg" && bad "PostgreSQL still running" || pass "no PostgreSQL left"

# ---- a killed server: stop removes what it left; start reuses the dir ----
"$L" start --state-dir "$tmp/c" >/dev/null 2>&1 || bad "start C"
cpid=$(head -1 "$tmp/c/dsql-local.pid")
kill -KILL "$cpid"
until_true eval '! alive "$cpid"'
"$L" stop --state-dir "$tmp/c" 2>/dev/null
[ ! -e "$tmp/c" ] && pass "stop after a killed server removes its state" || bad "left: $(ls -A "$tmp/c")"

# ---- run: duration limit, exit status, cleanup ----
mkdir "$tmp/t"
export PATH="$B:$PATH"
out=$(TMPDIR=$tmp/t "$L" run --max-connection-duration 2 -- sh -c \
    'PGPASSWORD=$(dsql-token --hostname "$PGHOST") psql -X -At -c "select 42" -c "select pg_sleep(6)"' 2>&1)
st=$?
echo "$out" | grep -q "^42" && [ $st -ne 0 ] &&
    echo "$out" | grep -Eq "maximum connection duration|server closed the connection|connection to server was lost" &&
    pass "connection-duration limit closes the session (status $st)" || bad "duration limit: status $st: $out"
out=$(TMPDIR=$tmp/t "$L" run --temporary-credentials -- sh -c \
    'test -n "$AWS_SESSION_TOKEN" && PGPASSWORD=$(dsql-token --hostname "$PGHOST") psql -X -At -c "select 1"' 2>&1)
[ "$out" = 1 ] && pass "run with temporary credentials" || bad "temporary credentials: $out"
TMPDIR=$tmp/t "$L" run -- sh -c 'exit 7'
st=$?
[ $st -eq 7 ] && pass "run returns the command's status" || bad "run returned $st, wanted 7"
TMPDIR=$tmp/t "$L" run -- sh -c 'kill -9 $$'
st=$?
[ $st -eq 137 ] && pass "run reports a killed command as 128+9" || bad "run returned $st for a killed command"
# a sleep no other process on the machine runs, to find ours
nap="sleep 60.$$"
# (run starts PostgreSQL first: initdb alone can take 10 s on a loaded machine)
waitfor() { until_true test -e "$1"; }
TMPDIR=$tmp/t "$L" run -- sh -c "touch $tmp/started2; exec $nap" &
rp=$!; waitfor "$tmp/started2"; kill -TERM $rp; wait $rp
st=$?
[ $st -eq 143 ] && pass "SIGTERM to run stops the command ($st)" || bad "SIGTERM to run: status $st"
TMPDIR=$tmp/t "$L" run -- sh -c "touch $tmp/started; exec $nap" &
rp=$!; waitfor "$tmp/started"; kill -KILL $rp; wait $rp 2>/dev/null
TMPDIR=$tmp/t "$L" run -- $nap &
rp=$!; sleep 0.5; kill -KILL $rp; wait $rp 2>/dev/null
n=0
while :; do # the servers stop PostgreSQL and clean up on their own
    left=$(ls -A "$tmp/t")
    procs=$(ps -eo args | grep -v grep | grep -F -e "$tmp/t" -e "$nap" | tee "$tmp/procs" | wc -l)
    [ -z "$left" ] && [ "$procs" -eq 0 ] && break
    n=$((n + 1)); [ $n -ge 60 ] && break
    sleep 0.5
done
[ -z "$left" ] && [ "$procs" -eq 0 ] && pass "nothing left behind by run (even after kill -9 of run)" ||
    bad "left behind: files '$left', processes: $(cat "$tmp/procs")"
out=$("$L" start --port 99999 2>&1; echo "st=$?")
echo "$out" | grep -q "st=2" && pass "bad option value exits 2" || bad "bad option: $out"

[ $fail -eq 0 ] && echo "all dsql-local checks passed"
exit $fail

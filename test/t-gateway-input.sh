#!/bin/sh
# dsql-local and what a client says before it has logged in (issue 13):
#   - item 3: a startup packet that names a parameter twice is refused with
#     08P01 naming it (user=alice then user=admin with alice's token logged
#     in as admin: the gateway checked the first, PostgreSQL used the last);
#   - item 5: client strings are escaped in the log: a newline in a user
#     name cannot forge a line, control bytes and bytes that are not UTF-8
#     reach the log as \xNN.
# Loopback only.
. "$(dirname "$0")/dsql-local-lib.sh"
need_pg15 psql
make_tmp
stop_on_exit s
unset AWS_PROFILE AWS_DEFAULT_REGION AWS_SESSION_TOKEN PGPASSWORD PGSERVICE PGOPTIONS

cat >"$tmp/client.py" <<'PY'
# client.py PAIRS PASSWORD: a TLS login with a hand-made startup packet.
# PAIRS is name=value,name=value (value may hold \n and \xNN escapes).
# Prints the server's error fields, or "logged in as <current_user>".
import os, socket, ssl, struct, sys

def unescape(s):
    return s.encode().decode("unicode_escape").encode("latin-1")

pairs = [p.split("=", 1) for p in sys.argv[1].split(",")]
body = struct.pack("!I", 196608)
for k, v in pairs:
    body += unescape(k) + b"\0" + unescape(v) + b"\0"
body += b"\0"
s = socket.create_connection(("127.0.0.1", int(os.environ["PGPORT"])), timeout=30)
s.sendall(struct.pack("!II", 8, 80877103))
assert s.recv(1) == b"S"
ctx = ssl.create_default_context(cafile=os.environ["PGSSLROOTCERT"])
t = ctx.wrap_socket(s, server_hostname=os.environ["PGHOST"])
t.sendall(struct.pack("!I", len(body) + 4) + body)

def message():
    hdr = b""
    while len(hdr) < 5:
        d = t.recv(5 - len(hdr))
        if not d:
            return None, b""
        hdr += d
    n = struct.unpack("!I", hdr[1:5])[0] - 4
    data = b""
    while len(data) < n:
        data += t.recv(n - len(data))
    return hdr[:1], data

def error(data):
    return "error " + " ".join(f[:1].decode() + "=" + f[1:].decode(errors="replace")
                               for f in data.split(b"\0") if f)

typ, data = message()
if typ == b"E":
    print(error(data)); sys.exit(0)
pw = sys.argv[2].encode()
t.sendall(b"p" + struct.pack("!I", len(pw) + 5) + pw + b"\0")
while True:
    typ, data = message()
    if typ is None:
        print("closed"); sys.exit(0)
    if typ == b"E":
        print(error(data)); sys.exit(0)
    if typ == b"Z":
        break
q = b"select current_user\0"
t.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
while True:
    typ, data = message()
    if typ == b"D":
        print("logged in as", data[6:].decode())
    if typ in (b"Z", b"E", None):
        break
PY

start_local s
. "$tmp/s.env"
log=$tmp/s/dsql-local.log
# timeout: a guard against a hang (the socket itself gives up after 30 s);
# 20 s killed one client silently on a machine at load 55
client() { timeout 120 python3 "$tmp/client.py" "$@" 2>&1; }

# ---- item 3: duplicate startup parameters ----
PGPASSWORD=$("$T" --hostname "$PGHOST") psql -X -q -c "create role alice login" 2>&1
alice=$("$T" --hostname "$PGHOST" --user alice)
out=$(client "user=alice,database=postgres" "$alice")
[ "$out" = "logged in as alice" ] && pass "control: alice's token logs in as alice" ||
    bad "control login: $out"
out=$(client "user=alice,database=postgres,user=admin" "$alice")
echo "$out" | grep -q 'C=08P01' && echo "$out" | grep -q 'parameter "user" appears more than once' &&
    pass "user named twice: refused: $(echo "$out" | sed 's/.*M=//')" ||
    bad "user named twice: wanted 08P01 naming user, got: $out"
out=$(client "user=alice,database=postgres,database=template1" "$alice")
echo "$out" | grep -q 'C=08P01' && echo "$out" | grep -q 'parameter "database" appears more than once' &&
    pass "database named twice: refused with 08P01" || bad "database named twice: $out"
out=$(client 'user=alice,database=postgres,x\x01"y=1,x\x01"y=2' "$alice")
echo "$out" | grep -q 'parameter "x\\x01\\"y" appears more than once' &&
    pass "a repeated name is shown escaped: $(echo "$out" | sed 's/.*M=//')" ||
    bad "escaped repeated name: $out"

# ---- item 5: what a client sends reaches the log escaped ----
forged='2026-01-01T00:00:00Z dsql-local[1]: forged'
out=$(client "user=m\\n$forged\\x1b[2J\\xff,database=postgres" "notatoken")
echo "$out" | grep -q "28P01" || bad "log injection login: wanted a refusal, got: $out"
starts_forged() { awk -v f="$forged" 'index($0, f) == 1' "$log"; }
if [ -n "$(starts_forged)" ]; then
    bad "a newline in the user name forged a log line: $(starts_forged)"
else
    pass "a newline in the user name does not start a log line"
fi
grep -qF 'user "m\x0a2026-01-01T00:00:00Z dsql-local[1]: forged\x1b[2J\xff"' "$log" &&
    pass "newline, ESC and a non-UTF-8 byte are logged as \\xNN" ||
    bad "escaped user name not found in the log: $(grep 'forged' "$log")"
python3 - "$log" <<'PY' && pass "the log is valid UTF-8 without control bytes" || bad "the log has raw control bytes or invalid UTF-8"
import sys
data = open(sys.argv[1], "rb").read()
text = data.decode("utf-8")  # raises on invalid UTF-8
sys.exit(1 if any(ord(c) < 0x20 and c != "\n" or ord(c) == 0x7f for c in text) else 0)
PY
# a user name in UTF-8 stays readable
out=$(client "user=j\\xc3\\xbcrgen,database=postgres" "notatoken")
grep -q 'user "jürgen"' "$log" && pass "a UTF-8 user name is logged as it is" ||
    bad "UTF-8 user name: $(grep 'rgen' "$log")"

"$L" stop --state-dir "$tmp/s" || bad "stop"
[ $fail -eq 0 ] && echo "all gateway input checks passed"
exit $fail

# The PostgreSQL wire helpers the dsql-proxy test scripts' raw clients
# share (t-dsql-proxy*.sh write those clients to $tmp and import this from
# $SRC/test). Not a test: test/run-tests runs only test/t-*.sh.
import os, struct, subprocess


def startup(params):
    """A protocol 3.0 StartupMessage with the (name, value) byte pairs."""
    body = struct.pack("!I", 196608) + b"".join(k + b"\0" + v + b"\0" for k, v in params) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def read_all(s):
    """Every byte until the peer closes (or the socket times out)."""
    d = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            d += b
    except OSError:
        pass
    return d


def until_z(c):
    """True at the first ReadyForQuery, False at an error or a close."""
    d = b""
    while True:
        while len(d) >= 5 and len(d) >= 1 + struct.unpack("!I", d[1:5])[0]:
            n = 1 + struct.unpack("!I", d[1:5])[0]
            m, d = d[:n], d[n:]
            if m[:1] == b"E":
                return False
            if m[:1] == b"Z":
                return True
        b = c.recv(65536)
        if not b:
            return False
        d += b


def running(sql):
    """pg_stat_activity, asked straight at the gateway (this environment's
    PGHOST, a fresh token from $B/dsql-token), shows sql active."""
    q = "select count(*) from pg_stat_activity where state = 'active' and query = '%s'" % sql
    token = subprocess.run([os.environ["B"] + "/dsql-token"], capture_output=True, text=True).stdout.strip()
    out = subprocess.run(["psql", "-X", "-Atc", q], env=dict(os.environ, PGPASSWORD=token),
                         capture_output=True, text=True).stdout
    return out.strip() == "1"

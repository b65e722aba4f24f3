#!/bin/sh
# dsql-proxy when descriptors run out and when clients flood it with bad
# input, against a real dsql-local:
#   - under a 48-descriptor limit, 10 sessions logged in and 40 clients
#     that never speak: accept() fails with EMFILE, the proxy closes idle
#     pre-login clients to make room, and real logins still get in (the
#     proxy's CPU over the flood is printed: a measurement, not asserted),
#     one more arrival closes exactly one idle client, and a psql cancel
#     (SIGINT) of a running pg_sleep(30) still gets through;
#   - 1,000 malformed startups in a row: the refusals are logged through
#     the rate limit (a burst, then a line that says how many were held
#     back), not once each.
. "$(dirname "$0")/dsql-proxy-lib.sh"
proxy_script psql prlimit

cat >"$tmp/flood.py" <<'PY'
import os, socket, struct, sys, time
sys.path.insert(0, os.path.join(os.environ["SRC"], "test"))
from proxy_wire import startup, until_z
path = sys.argv[1]; case = sys.argv[2]
def conn():
    s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(path); return s
if case == "hold":
    # n sessions logged in, then m silent clients, held until the file
    # named by argv[5] appears; then each session answers a query
    n, m, done = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    import os
    sessions = []
    for i in range(n):
        s = conn(); s.sendall(startup([(b"user", b"admin"), (b"database", b"postgres")]))
        sessions.append(s)
    ok = sum(1 for s in sessions if until_z(s))
    silent = [conn() for i in range(m)]
    print("held", flush=True)
    while not os.path.exists(done): time.sleep(0.1)
    q = b"select 1\0"
    for s in sessions: s.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
    print("%d logged in, %d answered after the flood" % (ok, sum(1 for s in sessions if until_z(s))))
elif case == "one":
    # one more client that is answered (an SSLRequest), held until argv[3]
    s = conn(); s.sendall(struct.pack("!II", 8, 80877103))
    print("answered %r" % s.recv(1), flush=True)
    while not os.path.exists(sys.argv[3]): time.sleep(0.1)
elif case == "bad":
    # startups that name no protocol the proxy speaks
    for i in range(int(sys.argv[3])):
        s = conn(); s.sendall(struct.pack("!II", 8, 1234)); s.recv(100); s.close()
PY

# the checks, run under one time limit against the gateway started below
cat >"$tmp/inner.sh" <<'SH'
. "$SRC/test/dsql-proxy-lib.sh"
cpu() { awk '{print $14 + $15}' /proc/"$1"/stat; }

# ---- out of descriptors ----
# --max-connections and --auth-timeout well above what the flood needs, so
# only descriptors run out; logins give up after 20 s (PGCONNECT_TIMEOUT)
prlimit --nofile=48:48 "$P" --listen "unix:$tmp/f" --max-connections 100 --auth-timeout 120 \
    2>"$tmp/f.err" &
pp=$!
until_line "$tmp/f.err" "ready on" || { cat "$tmp/f.err"; echo "FAIL proxy did not start"; exit 1; }
# a query to cancel once descriptors are exhausted (psql cancels on SIGINT)
$plain_psql -h "$tmp/f" -Atc "select pg_sleep(30)" >"$tmp/sleep.out" 2>&1 &
sp=$!
wait_running "select pg_sleep(30)" || bad "pg_sleep(30) never ran"
python3 "$tmp/flood.py" "$tmp/f/.s.PGSQL.5432" hold 10 40 "$tmp/done" >"$tmp/hold.out" 2>&1 &
hp=$!
until_line "$tmp/hold.out" held
c0=$(cpu $pp)
# every descriptor in use: the next accept() fails with EMFILE. (An
# eviction closes its client's socket at once, so the retried accept()
# gets in and "accept failed" need not be logged.) "held" means the
# clients are queued, not accepted: on a busy machine the proxy may still
# be working through the queue, one eviction and accept at a time, so
# the count is polled.
# Only descriptors below the limit count: one the proxy inherited above it
# (a pipe at 251 from some parents) would hide a slot left empty.
open_fds() { ls /proc/$pp/fd | awk '$1 < 48' | wc -l; }
until_true eval '[ "$(open_fds)" -ge 48 ]'
fds=$(open_fds)
check "the flood ran the proxy out of descriptors ($fds of 48 open)" test "$fds" -ge 48
# one more client while every descriptor is in use: exactly one idle
# client makes room for it. Linux's accept() fails with EMFILE even when
# nobody waits, so a proxy that evicted on every EMFILE closed a second
# one after accepting it and sat at 47 (seen on CI).
python3 "$tmp/flood.py" "$tmp/f/.s.PGSQL.5432" one "$tmp/done" >"$tmp/one.out" 2>&1 &
until_line "$tmp/one.out" answered
fds_full() { [ "$(open_fds)" -eq 48 ]; }
check "one more client closed exactly one idle client ($(cat "$tmp/one.out"), $(open_fds) of 48 open)" holds_for 1 fds_full
kill -INT $sp
t0=$(date +%s)
wait $sp
check "a cancel while descriptors are exhausted ($(tr '\n' ' ' <"$tmp/sleep.out")after $(($(date +%s) - t0)) s)" \
    grep -q "canceling statement due to user request" "$tmp/sleep.out"
got=
for i in 1 2 3; do
    got="$got$(PGCONNECT_TIMEOUT=20 psql -h "$tmp/f" -Atc "select $i" 2>&1)"
done
check "3 logins while descriptors are exhausted ($got)" test "$got" = 123
check "idle pre-login clients were closed to make room" grep -q "closed before login to make room" "$tmp/f.err"
sleep 2
c1=$(cpu $pp)
touch "$tmp/done"
wait $hp
out=$(tail -1 "$tmp/hold.out")
check "the sessions logged in before still answer ($out)" test "$out" = "10 logged in, 10 answered after the flood"
echo "     proxy CPU while exhausted: $((c1 - c0)) ticks over the logins and 2 s (measured, not asserted)"
kill $pp
wait $pp
check "exit 0" test $? -eq 0

# ---- a flood of bad startups: logged through the rate limit ----
"$P" --listen "unix:$tmp/b" 2>"$tmp/b.err" &
pp=$!
until_line "$tmp/b.err" "ready on" || bad "proxy (bad startups) did not start"
python3 "$tmp/flood.py" "$tmp/b/.s.PGSQL.5432" bad 1000
sleep 0.5
python3 "$tmp/flood.py" "$tmp/b/.s.PGSQL.5432" bad 1
n=$(grep -c "refused (08P01)" "$tmp/b.err")
check "1,001 bad startups, $n refusal lines logged (a burst of 100, then 10 a second)" test "$n" -lt 500
check "a later line says how many were held back" grep -q "more like this, not logged" "$tmp/b.err"
out=$(psql -h "$tmp/b" -Atc 'select 4' 2>&1)
check "still serving ($out)" test "$out" = 4
kill $pp
wait $pp
no_sanitizer_reports
exit $fail
SH

run_inner
exit $fail

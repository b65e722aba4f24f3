#!/bin/sh
# dsql-local's gateway connecting a login to PostgreSQL when PostgreSQL's
# listen backlog is full (the gateway retries for 5 s) and, meanwhile, the
# gateway runs out of descriptors: each retry asks the gateway to free one,
# by closing a connection that has not logged in. Here one idle connection
# waits, and the gateway's soft limit is lowered to just above that
# connection's descriptor: the login gets in once the idle one is closed.
# The backlog is filled by stopping the postmaster and connecting to its
# socket until a connect fails. Ordered by the log and /proc, not by sleeps.
. "$(dirname "$0")/dsql-local-lib.sh"
need_pg15 psql prlimit
make_tmp
stop_on_exit s
start_local s
use_local s
gw=$(head -1 "$tmp/s/dsql-local.pid")
pm=$(head -1 "$tmp/s/pg/data/postmaster.pid")
log=$tmp/s/dsql-local.log
hard=$(awk '/Max open files/ {print $5}' /proc/"$gw"/limits)

cat >"$tmp/fill.py" <<'PY'
# connects to a Unix socket until its listen backlog is full, says how
# many it holds, then holds them until killed
import resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
while True:
    s = socket.socket(socket.AF_UNIX); s.setblocking(False)
    try: s.connect(sys.argv[1])
    except BlockingIOError: s.close(); break
    held.append(s)
print(len(held), flush=True)
time.sleep(120)
PY

# the lowest free descriptor now is the one the idle connection gets
lowest_free() {
    ls /proc/"$gw"/fd | sort -n | awk 'BEGIN { n = 0 } $1 == n { n++ } END { print n }'
}
x=$(lowest_free)
python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); time.sleep(120)' "$PGPORT" &
idle=$!
until_true test -e /proc/"$gw"/fd/"$x"
kill -STOP "$pm"
python3 "$tmp/fill.py" "$tmp/s/pg/.s.PGSQL.5432" >"$tmp/fill.out" &
fill=$!
until_true test -s "$tmp/fill.out"
pass "PostgreSQL's backlog is full ($(cat "$tmp/fill.out") connections wait in it)"
psql -X -Atc 'select 1' >"$tmp/login.out" 2>&1 &
client=$!
# the token checked out and the first connect to PostgreSQL failed
# (backlog full): the gateway retries, and from here it can open a
# descriptor only where the idle connection's is
until_line "$log" 'authenticated'
prlimit --pid "$gw" --nofile=$((x + 1)):"$hard"
kill "$fill"
kill -CONT "$pm"
wait "$client"
out=$(cat "$tmp/login.out")
prlimit --pid "$gw" --nofile="$hard":"$hard"
kill "$idle"
wait "$fill" "$idle" 2>/dev/null
check "the login gets in while descriptors ran out ($out)" test "$out" = 1
check "... because the idle connection was closed to make room" \
    grep -q 'closed before login to make room' "$log"
check "the gateway is still running" alive "$gw"
out=$(psql -X -Atc 'select 2' 2>&1)
check "the next login works ($out)" test "$out" = 2
"$L" stop --state-dir "$tmp/s" >/dev/null 2>&1 || bad "stop"
exit $fail

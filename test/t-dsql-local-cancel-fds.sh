#!/bin/sh
# dsql-local forwards a cancel while every descriptor of its gateway is in
# use: a session runs pg_sleep(30), silent TCP connections fill the rest of
# a 128-descriptor limit (the pre-login cap set above it, so accept() itself
# runs out), then psycopg2 cancels. The arrival takes an idle connection's
# place, and the cancel's own descriptor is given back before the gateway
# opens one to PostgreSQL. Loopback only.
. "$(dirname "$0")/dsql-local-lib.sh"
need_pg15 prlimit
# Debian's psycopg2 is for Debian's python3, not another python3 on PATH
PY=/usr/bin/python3
if ! $PY -c 'import psycopg2' 2>/dev/null; then
    [ "${CI:-}" = true ] && { bad "psycopg2: Debian's python3-psycopg2 is not installed (CI=true: it must run here)"; exit 1; }
    echo "SKIP psycopg2: Debian's python3-psycopg2 is not installed (scripts/install-deps) -- NOT TESTED"
    exit 0
fi
make_tmp
stop_on_exit s
unset AWS_PROFILE AWS_DEFAULT_REGION AWS_SESSION_TOKEN PGPASSWORD PGSERVICE PGOPTIONS

if ! prlimit --nofile=128:128 -- "$L" start --state-dir "$tmp/s" --max-preauth 5000 \
        >"$tmp/env" 2>"$tmp/err"; then
    bad "dsql-local start: $(cat "$tmp/err")"
    exit 1
fi
. "$tmp/env"
PGPASSWORD="$("$T" --hostname "$PGHOST")"
export PGPASSWORD
pid=$(head -1 "$tmp/s/dsql-local.pid")

cat >"$tmp/cancel.py" <<'PY'
import os, socket, sys, threading, time
import psycopg2
pid, limit = sys.argv[1], int(sys.argv[2])
def used(): # the gateway's descriptors below its limit
    return sum(1 for f in os.listdir("/proc/%s/fd" % pid) if int(f) < limit)
def until(cond, secs=30):
    end = time.time() + secs
    while not cond():
        if time.time() > end:
            return False
        time.sleep(0.05)
    return True
conn = psycopg2.connect("")
outcome = []
def sleep30():
    try:
        conn.cursor().execute("select pg_sleep(30)")
        outcome.append("finished")
    except psycopg2.Error as e:
        outcome.append("%s %s" % (e.pgcode, e.pgerror.strip().splitlines()[0]))
t = threading.Thread(target=sleep30)
t.start()
# a cancel that comes before the query runs cancels nothing: wait for it
# (asked on a second connection, closed before the descriptors are filled)
watch = psycopg2.connect("")
watch.autocommit = True
def sleeping():
    cur = watch.cursor()
    cur.execute("select count(*) from pg_stat_activity"
                " where query = 'select pg_sleep(30)' and state = 'active'")
    return cur.fetchone()[0] == 1
running = until(sleeping)
watch.close()
addr = (os.environ.get("PGHOSTADDR") or "127.0.0.1", int(os.environ["PGPORT"]))
silent = [socket.create_connection(addr) for i in range(limit - used() + 5)]
full = until(lambda: used() == limit)
t0 = time.time()
conn.cancel()
t.join(40)
print("running=%s full=%s outcome=%s seconds=%.1f"
      % (running, full, outcome[0] if outcome else "none", time.time() - t0))
PY
out=$($PY "$tmp/cancel.py" "$pid" 128 2>&1)
case $out in
    "running=True full=True outcome=57014 "*) pass "a cancel gets through with every descriptor in use ($out)" ;;
    *) bad "cancel with every descriptor in use: $out; $(grep -i cancel "$tmp/s/dsql-local.log" | tail -2)" ;;
esac
"$L" stop --state-dir "$tmp/s" && pass "stop" || bad "stop"
exit $fail

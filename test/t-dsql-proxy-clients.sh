#!/bin/sh
# Real client libraries through dsql-proxy against dsql-local, none given a
# password: Python's psycopg2 (Debian's python3-psycopg2, on libpq) and
# Node's pg (node-postgres from npm, its own protocol code, extended query
# protocol), each running queries and cancelling its own pg_sleep(30) the
# way it does (psycopg2: conn.cancel() from another thread; pg: its cancel
# on a second connection); then pgbench, persistent and -C.
# A missing client is a loud SKIP; under CI (CI=true) it is a failure, so the
# CI run cannot pass without running them. scripts/install-deps installs the
# Debian packages; pg is installed here with npm ci from test/node's lock
# file into $B/node.
. "$(dirname "$0")/dsql-proxy-lib.sh"
proxy_script psql
src=$SRC/test
# missing: a loud SKIP, or a failure under CI
missing() {
    if [ "${CI:-}" = true ]; then
        bad "$1 (CI=true: this client must run here)"
    else
        echo "SKIP $1 -- NOT TESTED"
    fi
}

# Debian's psycopg2 is for Debian's python3, not another python3 on PATH
PY=/usr/bin/python3
if [ -x $PY ] && $PY -c 'import psycopg2' 2>/dev/null; then
    have_py=yes
else
    have_py=no; missing "psycopg2: Debian's python3-psycopg2 is not installed (scripts/install-deps)"
fi
# node-postgres, installed (again only when the lock file changed) by npm ci
have_node=no
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing "node pg: node or npm not installed (scripts/install-deps)"
elif mkdir -p "$B/node" && { cmp -s "$src/node/package-lock.json" "$B/node/package-lock.json" &&
        [ -f "$B/node/node_modules/pg/package.json" ] ||
        { cp "$src/node/package.json" "$src/node/package-lock.json" "$B/node/" &&
          (cd "$B/node" && npm ci --no-audit --no-fund --ignore-scripts >npm.log 2>&1); }; }; then
    have_node=yes
else
    missing "node pg: npm ci failed ($(grep -m2 'npm error' "$B/node/npm.log" | tr '\n' ' '))"
    rm -f "$B/node/package-lock.json"
fi
export PY src have_py have_node
export NODE_PATH="$B/node/node_modules"

cat >"$tmp/client.py" <<'PY'
# psycopg2 (libpq underneath) through the proxy: queries, a transaction,
# and conn.cancel() of a running pg_sleep(30) from another thread
import sys, threading, time
import psycopg2, psycopg2.errors
dsn = sys.argv[1]
ok = True
def check(what, cond, got):
    global ok
    print("%s %s (%s)" % ("ok  " if cond else "FAIL", what, got))
    ok = ok and cond
c = psycopg2.connect(dsn)
cur = c.cursor()
cur.execute("select current_user, %s + %s", (40, 2))
row = cur.fetchone()
check("psycopg2: a query with parameters", row == ("admin", 42), row)
c.commit()
# DSQL: DDL in its own transaction, then DML
cur.execute("create table py_items (id int primary key, name text)")
c.commit()
cur.executemany("insert into py_items values (%s, %s)", [(i, "n%d" % i) for i in range(50)])
c.commit()
cur.execute("select count(*), max(name) from py_items")
row = cur.fetchone()
check("psycopg2: a committed transaction of 50 inserts", row == (50, "n9"), row)
c.commit()
watcher = psycopg2.connect(dsn)
watcher.autocommit = True
def cancel_when_running():
    w = watcher.cursor()
    for _ in range(600):
        w.execute("select count(*) from pg_stat_activity where query = 'select pg_sleep(30)'")
        if w.fetchone()[0] == 1:
            break
        time.sleep(0.1)
    c.cancel()
t = threading.Thread(target=cancel_when_running)
t0 = time.time()
t.start()
try:
    cur.execute("select pg_sleep(30)")
    got = "finished"
except psycopg2.errors.QueryCanceled as e:
    got = "%s %s" % (e.pgcode, e.pgerror.strip().splitlines()[0])
t.join()
check("psycopg2: conn.cancel() from a thread stops pg_sleep(30) after %.1f s" % (time.time() - t0),
      got == "57014 ERROR:  canceling statement due to user request", got)
c.rollback()
cur.execute("select 7")
row = cur.fetchone()
check("psycopg2: the connection serves after the cancel", row == (7,), row)
c.close()
watcher.close()
sys.exit(0 if ok else 1)
PY

cat >"$tmp/client.js" <<'JS'
// node-postgres through the proxy: its own protocol code (extended query
// protocol for parameters), a pool, and its cancel on a second connection
'use strict';
const { Client, Pool, Query } = require('pg');
const cfg = JSON.parse(process.argv[2]);
let ok = true;
function check(what, cond, got) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what} (${JSON.stringify(got)})`);
  ok = ok && cond;
}
async function main() {
  const c = new Client(cfg);
  await c.connect();
  let r = await c.query('select current_user as u, $1::int + $2::int as n', [40, 2]);
  check('node pg: a query with parameters', r.rows[0].u === 'admin' && r.rows[0].n === 42, r.rows[0]);
  await c.query('create table node_items (id int primary key, name text)');
  await c.query('begin');
  for (let i = 0; i < 50; i++)
    await c.query('insert into node_items values ($1, $2)', [i, `n${i}`]);
  await c.query('commit');
  r = await c.query('select count(*)::int as n from node_items');
  check('node pg: a committed transaction of 50 inserts', r.rows[0].n === 50, r.rows[0]);

  const pool = new Pool({ ...cfg, max: 8 });
  const rs = await Promise.all([...Array(32).keys()].map((i) => pool.query('select $1::int * 2 as d', [i])));
  const sum = rs.reduce((s, x) => s + x.rows[0].d, 0);
  check('node pg: 32 queries over a pool of 8', sum === 992, sum);
  await pool.end();

  const watcher = new Client(cfg);
  await watcher.connect();
  const t0 = Date.now();
  const q = c.query(new Query('select pg_sleep(30)'));
  const done = new Promise((resolve) => {
    q.on('error', (e) => resolve(`${e.code} ${e.message}`));
    q.on('end', () => resolve('finished'));
  });
  for (let i = 0; i < 600; i++) {
    r = await watcher.query("select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(30)'");
    if (r.rows[0].n === 1) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  new Client(cfg).cancel(c, q);
  const got = await done;
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  check(`node pg: its cancel stops pg_sleep(30) after ${secs} s`,
        got === '57014 canceling statement due to user request', got);
  r = await c.query('select 7 as n');
  check('node pg: the connection serves after the cancel', r.rows[0].n === 7, r.rows[0]);
  await watcher.end();
  await c.end();
}
main().then(() => process.exit(ok ? 0 : 1), (e) => { console.log(`FAIL node pg: ${e.stack}`); process.exit(1); });
JS

# the checks, run under one time limit against the gateway started below
cat >"$tmp/inner.sh" <<'SH'
. "$src/dsql-local-lib.sh"
"$P" --listen "unix:$tmp/s" --listen tcp:127.0.0.1:0 --trust-loopback 2>"$tmp/proxy.err" &
pp=$!
until_line "$tmp/proxy.err" "ready on" || { cat "$tmp/proxy.err"; echo "FAIL proxy did not start"; exit 1; }
port=$(sed -n 's/.*ready on .* tcp:127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/proxy.err")
# the clients, as in a plain shell: not pointed at dsql-local's gateway, no password
for v in PGHOSTADDR PGSSLMODE PGSSLROOTCERT PGPORT PGPASSWORD PGHOST; do unset $v; done

if [ "$have_py" = yes ]; then
    # libpq over the socket, and over TCP with its default SSLRequest (answered N)
    $PY "$tmp/client.py" "host=$tmp/s user=admin dbname=postgres" || fail=1
    out=$($PY -c 'import psycopg2, sys; c = psycopg2.connect(sys.argv[1]); k = c.cursor(); k.execute("select 5"); print(k.fetchone()[0])' \
        "host=127.0.0.1 port=$port sslmode=prefer user=admin dbname=postgres" 2>&1)
    check "psycopg2 over loopback TCP, sslmode=prefer ($out)" test "$out" = 5
fi
if [ "$have_node" = yes ]; then
    # over loopback TCP (pg sends no SSLRequest unless asked)
    node --no-deprecation "$tmp/client.js" \
        "{\"host\":\"127.0.0.1\",\"port\":$port,\"user\":\"admin\",\"database\":\"postgres\"}" || fail=1
    out=$(node -e 'const {Client}=require("pg"); const c=new Client({host:process.argv[1],user:"admin",database:"postgres"});
        c.connect().then(()=>c.query("select 6 as n")).then((r)=>{console.log(r.rows[0].n); return c.end();}).catch((e)=>console.log(e.message));' "$tmp/s" 2>&1)
    check "node pg over the unix socket ($out)" test "$out" = 6
fi

# pgbench: its own script (DSQL rules leave out pgbench -i), 4 clients,
# persistent connections and a new connection per transaction
printf '\\set k random(1, 1000)\nselect :k * 2;\n' >"$tmp/select.sql"
for mode in "" -C; do
    out=$(PGHOST=$tmp/s pgbench -n $mode -f "$tmp/select.sql" -c 4 -j 2 -t 50 -U admin postgres 2>&1)
    got=$(printf '%s\n' "$out" | sed -n 's/^number of transactions actually processed: //p')
    check "pgbench ${mode:-(persistent)} through the proxy: 200 transactions ($got)" test "$got" = 200/200
done

kill $pp
wait $pp
check "proxy exit 0 after SIGTERM" test $? -eq 0
# under SANITIZE builds, run alone: the proxy exited without a report
# (test/run-tests sends reports to files of its own and fails there)
found=$(grep 'Sanitizer\|runtime error:' "$tmp/proxy.err")
check "no sanitizer report in the proxy's log ($found)" test -z "$found"
want=0
[ "$have_py" = yes ] && want=$((want + 1))
[ "$have_node" = yes ] && want=$((want + 1))
got=$(grep -c 'cancel request forwarded' "$tmp/proxy.err")
check "the proxy forwarded each client's cancel ($got of $want)" test "$got" = "$want"
exit $fail
SH

if [ "$have_py$have_node" = nono ]; then
    echo "no client to test"
    exit $fail
fi
run_inner
exit $fail

#!/bin/sh
# ODBC adapter against dsql-local: test/odbc_connect.c through psqlODBC,
# once with the default key and once with temporary credentials whose
# session token makes the IAM token longer than 1,000 bytes.
set -u
B=${B:-build}
prog=$B/test/odbc_connect
[ -x "$prog" ] || { echo "FAIL $prog not built (make check builds it)"; exit 1; }
[ -x "$B/dsql-local" ] || { echo "FAIL $B/dsql-local not built"; exit 1; }

# psqlODBC by path, so the test needs no odbcinst.ini entry.
drv=""
libdir=$(pkg-config --variable=libdir odbc 2>/dev/null || true)
for d in "$libdir/odbc" /usr/lib/*/odbc /usr/lib/odbc /usr/lib64 /usr/local/lib; do
    if [ -f "$d/psqlodbcw.so" ]; then drv="$d/psqlodbcw.so"; break; fi
done
[ -n "$drv" ] || { echo "FAIL psqlodbcw.so not found (Debian package odbc-postgresql)"; exit 1; }
echo "driver: $drv"

tmp=$(mktemp -d)
logdir=${TMPDIR:-/tmp}
ls "$logdir" 2>/dev/null | grep -E '^(psqlodbc|mylog)_odbc_connect_' >"$tmp/logs.before"
# psqlODBC may open its own log files (psqlodbc_<prog>_<user><pid>.log);
# none may hold a token. Remove the ones this run made.
cleanup() {
    ls "$logdir" 2>/dev/null | grep -E '^(psqlodbc|mylog)_odbc_connect_' >"$tmp/logs.after"
    for f in $(comm -13 "$tmp/logs.before" "$tmp/logs.after"); do rm -f "$logdir/$f"; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail=0

# The example adapter skeleton runs offline against its stub driver.
if [ -x "$B/examples/adapter-skeleton" ]; then
    if "$B/examples/adapter-skeleton" >"$tmp/skel.out" 2>&1; then
        echo "ok   examples/adapter-skeleton runs"
    else
        cat "$tmp/skel.out"; echo "FAIL examples/adapter-skeleton"; fail=1
    fi
fi

# --postgres-compat: the quoting test makes a database with an odd name (both runs)
DSQL_ODBC_DRIVER=$drv "$B/dsql-local" run --postgres-compat -- "$prog" || fail=1

# A 1,200-character session token (like real STS ones) in a key table.
st=$(head -c 900 /dev/urandom | base64 | tr -d '\n' | cut -c1-1200)
echo "ASIAODBCTESTLONGTOKN $(head -c 30 /dev/urandom | base64 | tr -d '\n' | cut -c1-40) $st" >"$tmp/keys"
DSQL_ODBC_DRIVER=$drv ODBC_EXPECT_LONG_TOKEN=1 "$B/dsql-local" run --postgres-compat --keys "$tmp/keys" -- "$prog" || fail=1
ls "$logdir" 2>/dev/null | grep -E '^(psqlodbc|mylog)_odbc_connect_' >"$tmp/logs.after"
for f in $(comm -13 "$tmp/logs.before" "$tmp/logs.after"); do
    if grep -q -E 'X-Amz-|DbConnect' "$logdir/$f"; then
        echo "FAIL psqlODBC log $logdir/$f holds a token"; fail=1
    fi
done
[ $fail -eq 0 ] && echo "ok   no token in psqlODBC's own log files"
exit $fail

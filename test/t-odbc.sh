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
trap 'rm -rf "$tmp"' EXIT
fail=0

# The example adapter skeleton runs offline against its stub driver.
if [ -x "$B/examples/adapter-skeleton" ]; then
    if "$B/examples/adapter-skeleton" >"$tmp/skel.out" 2>&1; then
        echo "ok   examples/adapter-skeleton runs"
    else
        cat "$tmp/skel.out"; echo "FAIL examples/adapter-skeleton"; fail=1
    fi
fi

DSQL_ODBC_DRIVER=$drv "$B/dsql-local" run -- "$prog" || fail=1

# A 1,200-character session token (like real STS ones) in a key table.
st=$(head -c 900 /dev/urandom | base64 | tr -d '\n' | cut -c1-1200)
echo "ASIAODBCTESTLONGTOKN $(head -c 30 /dev/urandom | base64 | tr -d '\n' | cut -c1-40) $st" >"$tmp/keys"
DSQL_ODBC_DRIVER=$drv ODBC_EXPECT_LONG_TOKEN=1 "$B/dsql-local" run --keys "$tmp/keys" -- "$prog" || fail=1
exit $fail

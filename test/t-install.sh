#!/bin/sh
# make install into a DESTDIR/PREFIX, then build outside programs with
# pkg-config against the installed copy and run them: one with the core
# alone (dsqlauth: no libpq, no ODBC linked), one with both adapters
# (dsqlauth-pq, dsqlauth-odbc); then make uninstall. test/t-cmake.sh does
# the same for the CMake package.
set -u
B=${B:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/dsqlauth-test
make -s install B="$B" DESTDIR="$tmp/root" PREFIX=$prefix >/dev/null || { echo "FAIL make install"; exit 1; }
root=$tmp/root$prefix
for f in include/dsqlauth.h include/dsqlauth/token.h include/dsqlauth/pool.h include/dsqlauth/odbc.h \
         lib/libdsqlauth.so.0 lib/libdsqlauth.a lib/pkgconfig/dsqlauth.pc \
         lib/libdsqlauth-pq.so.0 lib/libdsqlauth-pq.a lib/pkgconfig/dsqlauth-pq.pc \
         lib/libdsqlauth-odbc.so.0 lib/libdsqlauth-odbc.a lib/pkgconfig/dsqlauth-odbc.pc \
         bin/dsql-token bin/dsql-local bin/dsql-proxy share/man/man1/dsql-proxy.1 \
         share/man/man3/dsql_token_generate.3 \
         share/man/man3/dsql_pq_connect.3 share/man/man3/dsql_odbc_connect.3 share/man/man1/dsql-token.1; do
    [ -e "$root/$f" ] || { echo "FAIL not installed: $f"; exit 1; }
done
echo "ok   installed headers, libraries, pkg-config file, CLI and man pages"
# the .pc files name the real prefix; point pkg-config at the staged copy
for pc in dsqlauth dsqlauth-pq dsqlauth-odbc; do
    sed "s|^prefix=.*|prefix=$root|; s|^libdir=.*|libdir=$root/lib|; s|^includedir=.*|includedir=$root/include|" \
        "$root/lib/pkgconfig/$pc.pc" >"$tmp/$pc.pc"
done
cat >"$tmp/outside.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <dsqlauth.h>
int main(void)
{
    printf("%s\n", dsql_version());
    return strcmp(dsql_version(), DSQL_VERSION_STRING) != 0;
}
C
# shellcheck disable=SC2046
# a sanitizer build of the library needs the sanitizer runtime in the program
${CC:-cc} ${SANITIZE:+-fsanitize=$SANITIZE} "$tmp/outside.c" -o "$tmp/outside" \
    $(PKG_CONFIG_PATH=$tmp pkg-config --cflags --libs dsqlauth) \
    || { echo "FAIL outside build with pkg-config"; exit 1; }
LD_LIBRARY_PATH=$root/lib "$tmp/outside" >/dev/null || { echo "FAIL outside program"; exit 1; }
echo "ok   outside program built with pkg-config --cflags --libs dsqlauth runs"
needed=$(readelf -d "$tmp/outside" | awk '/NEEDED/ {print $5}' | tr -d '[]' | tr '\n' ' ')
case "$needed" in
    *libdsqlauth.so.0*) ;;
    *) echo "FAIL the core program does not link libdsqlauth.so.0 (NEEDED: $needed)"; exit 1 ;;
esac
case "$needed" in
    *libpq*|*libodbc*|*libdsqlauth-*) echo "FAIL the core program links an adapter's library: $needed"; exit 1 ;;
esac
echo "ok   pkg-config dsqlauth links the core alone (no libpq, no ODBC)"
# shellcheck disable=SC2046
${CC:-cc} ${SANITIZE:+-fsanitize=$SANITIZE} test/cmake-consumer/main.c -o "$tmp/adapters" \
    $(PKG_CONFIG_PATH=$tmp pkg-config --cflags --libs dsqlauth-pq dsqlauth-odbc) \
    || { echo "FAIL outside build with pkg-config dsqlauth-pq dsqlauth-odbc"; exit 1; }
out=$(LD_LIBRARY_PATH=$root/lib "$tmp/adapters") || { echo "FAIL outside adapters program: $out"; exit 1; }
case "$out" in
    *"quoted {a}}b}"*) echo "ok   outside program built with pkg-config dsqlauth-pq dsqlauth-odbc runs" ;;
    *) echo "FAIL outside adapters program printed: $out"; exit 1 ;;
esac
make -s uninstall B="$B" DESTDIR="$tmp/root" PREFIX=$prefix >/dev/null || { echo "FAIL make uninstall"; exit 1; }
left=$(find "$tmp/root" -type f | head -5)
[ -z "$left" ] || { echo "FAIL uninstall left: $left"; exit 1; }
echo "ok   make uninstall removes every file"

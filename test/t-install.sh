#!/bin/sh
# make install into a DESTDIR/PREFIX, then build an outside program with
# pkg-config against the installed copy and run it; then make uninstall.
set -u
B=${B:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/dsqlauth-test
make -s install B="$B" DESTDIR="$tmp/root" PREFIX=$prefix >/dev/null || { echo "FAIL make install"; exit 1; }
root=$tmp/root$prefix
for f in include/dsqlauth.h include/dsqlauth/token.h lib/libdsqlauth.so.0 lib/libdsqlauth.a \
         lib/pkgconfig/dsqlauth.pc bin/dsql-token share/man/man3/dsql_token_generate.3 \
         share/man/man1/dsql-token.1; do
    [ -e "$root/$f" ] || { echo "FAIL not installed: $f"; exit 1; }
done
echo "ok   installed headers, libraries, pkg-config file, CLI and man pages"
# the .pc file names the real prefix; point pkg-config at the staged copy
sed "s|^prefix=.*|prefix=$root|; s|^libdir=.*|libdir=$root/lib|; s|^includedir=.*|includedir=$root/include|" \
    "$root/lib/pkgconfig/dsqlauth.pc" >"$tmp/dsqlauth.pc"
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
make -s uninstall B="$B" DESTDIR="$tmp/root" PREFIX=$prefix >/dev/null || { echo "FAIL make uninstall"; exit 1; }
left=$(find "$tmp/root" -type f | head -5)
[ -z "$left" ] || { echo "FAIL uninstall left: $left"; exit 1; }
echo "ok   make uninstall removes every file"

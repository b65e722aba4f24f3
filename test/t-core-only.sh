#!/bin/sh
# The core builds alone: in a copy of the tree, with libpq, ODBC, libevent,
# Check and libuv hidden from pkg-config, `./configure --without-libpq
# --without-odbc --without-tools` succeeds and `make` builds libdsqlauth
# only. The shared library needs none of the adapters' or tools' libraries
# (readelf NEEDED), exports exactly test/data/exports/libdsqlauth.txt, and
# `make install` installs the core's headers, .pc file and CMake target only.
set -u
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/src
mkdir "$src"
for f in * .gitignore; do
    case "$f" in build*|config.mk|config.status|config.log|autom4te.cache) continue ;; esac
    cp -R "$f" "$src/"
done

# pkg-config that knows only the core's packages
real=$(command -v pkg-config) || { echo "FAIL pkg-config not found"; exit 1; }
mkdir "$tmp/bin"
cat >"$tmp/bin/pkg-config" <<EOF
#!/bin/sh
for a in "\$@"; do
    case "\$a" in libpq*|odbc*|libevent*|check*|libuv*) exit 1 ;; esac
done
exec "$real" "\$@"
EOF
chmod +x "$tmp/bin/pkg-config"

# a clean make: no jobserver or variables from an outer `make check`
clean_make() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u B make "$@"; }
cd "$src" || exit 1
[ -x configure ] || autoreconf -fi >"$tmp/autoreconf.log" 2>&1 || { echo "FAIL autoreconf"; exit 1; }
PATH=$tmp/bin:$PATH ./configure --quiet CC="$CC" PKG_CONFIG="$tmp/bin/pkg-config" \
    --without-libpq --without-odbc --without-tools >"$tmp/configure.log" 2>&1 ||
    { echo "FAIL configure of the core alone:"; cat "$tmp/configure.log"; exit 1; }
echo "ok   configure --without-libpq --without-odbc --without-tools with only the core's packages"
start=$(date +%s)
# -O0: this test is about what the build needs, not about the code generated
PATH=$tmp/bin:$PATH clean_make -j2 CC="$CC" CFLAGS=-O0 >"$tmp/build.log" 2>&1 ||
    { echo "FAIL make of the core alone:"; tail -30 "$tmp/build.log"; exit 1; }
echo "ok   make builds the core alone ($(($(date +%s) - start)) s)"
if grep -Eq -- '-lpq|-lodbc|-levent|postgresql|adapters/|tools/' "$tmp/build.log"; then
    echo "FAIL the core build touched an adapter, a tool or their libraries:"
    grep -E -- '-lpq|-lodbc|-levent|postgresql|adapters/|tools/' "$tmp/build.log" | head -5; exit 1
fi
built=$(cd build && ls -d libdsqlauth* dsql-* 2>/dev/null | tr '\n' ' ')
if [ "$built" = "libdsqlauth.a libdsqlauth.so libdsqlauth.so.0 libdsqlauth.so.0.1.0 " ]; then
    echo "ok   built only libdsqlauth.so and libdsqlauth.a"
else
    echo "FAIL built: $built"; exit 1
fi
needed=$(readelf -d build/libdsqlauth.so | awk '/NEEDED/ {print $5}' | tr -d '[]' | tr '\n' ' ')
case "$needed" in
    *libpq*|*libodbc*|*libevent*|*libssl*|*libuv*|*libcheck*)
        echo "FAIL libdsqlauth.so needs: $needed"; exit 1 ;;
esac
echo "ok   libdsqlauth.so needs only: $needed"
nm -D --defined-only build/libdsqlauth.so | awk '$2 ~ /[TDBRVWi]/ {print $3}' | sed 's/@.*//' | sort -u >"$tmp/exported"
if diff -u test/data/exports/libdsqlauth.txt "$tmp/exported" >"$tmp/d"; then
    echo "ok   it exports exactly test/data/exports/libdsqlauth.txt ($(wc -l <"$tmp/exported") dsql_* functions)"
else
    echo "FAIL exports of the core-only build:"; cat "$tmp/d"; exit 1
fi
clean_make -s install DESTDIR="$tmp/root" PREFIX=/usr >"$tmp/install.log" 2>&1 ||
    { echo "FAIL make install of the core alone:"; cat "$tmp/install.log"; exit 1; }
installed=$(cd "$tmp/root/usr" && find . -type f -o -type l | sort)
for f in ./lib/libdsqlauth.so.0 ./lib/pkgconfig/dsqlauth.pc ./lib/cmake/dsqlauth/dsqlauthConfig.cmake \
         ./include/dsqlauth/token.h; do
    echo "$installed" | grep -qx "$f" || { echo "FAIL not installed: $f"; exit 1; }
done
extra=$(echo "$installed" | grep -E 'libdsqlauth-|dsqlauth-(pq|odbc)\.pc|libpq\.h|pool\.h|odbc\.h|dsql_pq_|dsql_odbc_|bin/')
[ -z "$extra" ] || { echo "FAIL the core-only install has adapter or tool files: $extra"; exit 1; }
echo "ok   make install: the core's library, headers, .pc, CMake package and man pages only"

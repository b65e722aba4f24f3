#!/bin/sh
# `make dist` makes a tarball that builds on its own: it holds exactly the
# committed files plus a generated configure (no config.mk, no build
# output); unpacked in an empty directory, `make all` configures (a real
# configure run), builds the library and dsql-token, and the token tool
# signs the published token.
set -u
CC=${CC:-cc}
fail=0
if ! git rev-parse --verify -q HEAD >/dev/null 2>&1 ||
    [ "$(git rev-parse --show-toplevel 2>/dev/null)" != "$(pwd -P)" ]; then
    echo "ok   not a git checkout of this tree: make dist (git archive HEAD) skipped"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# a clean make: no jobserver or variables from an outer `make check`
clean_make() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u B make "$@"; }

version=$(sed -n 's/^VERSION := //p' Makefile)
name=libdsqlauth-$version
clean_make -s dist DISTDIR="$tmp" >"$tmp/dist.log" 2>&1 ||
    { echo "FAIL make dist:"; cat "$tmp/dist.log"; exit 1; }
tarball=$tmp/$name.tar.gz
[ -f "$tarball" ] || { echo "FAIL make dist did not write $tarball"; cat "$tmp/dist.log"; exit 1; }
echo "ok   make dist wrote $name.tar.gz ($(wc -c <"$tarball") bytes)"

tar -tzf "$tarball" | grep -v '/$' | sed "s|^$name/||" | sort >"$tmp/listed"
{ git ls-tree -r --name-only HEAD; echo configure; echo aclocal.m4; } | sort >"$tmp/expected"
if diff -u "$tmp/expected" "$tmp/listed" >"$tmp/d"; then
    echo "ok   tarball == committed files + configure, aclocal.m4 ($(wc -l <"$tmp/listed") files)"
else
    echo "FAIL tarball contents (- expected, + in the tarball):"; head -40 "$tmp/d"; fail=1
fi
if tar -tzf "$tarball" | grep -v "^$name/" | grep -q .; then
    echo "FAIL tarball entries outside $name/"; fail=1
fi

mkdir "$tmp/unpack"
tar -xzf "$tarball" -C "$tmp/unpack" || { echo "FAIL unpacking $tarball"; exit 1; }
src=$tmp/unpack/$name
start=$(date +%s)
(cd "$src" && clean_make -j2 all CC="$CC") >"$tmp/build.log" 2>&1 ||
    { echo "FAIL make all in the unpacked tarball:"; tail -30 "$tmp/build.log"; exit 1; }
echo "ok   make all in the unpacked tarball ($(($(date +%s) - start)) s, CC=$CC)"
if [ -f "$src/config.status" ] && [ -f "$src/config.mk" ] && grep -q 'Written by ./configure' "$src/config.mk"; then
    echo "ok   config.mk written by a real configure run"
else
    echo "FAIL no config.mk from configure in the unpacked tree"; fail=1
fi
for f in build/libdsqlauth.so.$version build/libdsqlauth.a build/libdsqlauth-pq.so.$version \
         build/libdsqlauth-odbc.so.$version build/dsql-token; do
    [ -s "$src/$f" ] || { echo "FAIL $f was not built"; fail=1; }
done
soname=$(objdump -p "$src/build/libdsqlauth.so.$version" 2>/dev/null | awk '$1 == "SONAME" {print $2}')
[ -n "$soname" ] && echo "ok   built build/libdsqlauth.so.$version (soname $soname), libdsqlauth.a, the adapters' libraries, dsql-token"
out=$(env -i PATH="$PATH" HOME=/nonexistent AWS_EC2_METADATA_DISABLED=true \
    AWS_ACCESS_KEY_ID=ACCESS_KEY AWS_SECRET_ACCESS_KEY=SECRET_KEY AWS_SESSION_TOKEN=SESSION_TOKEN \
    "$src/build/dsql-token" --hostname test.dsql.us-east-1.on.aws --time 2024-11-07T17:39:33Z 2>&1)
case "$out" in
    *X-Amz-Signature=5ac084bc7cabccc19a52a5d1b5c24b50d3ce143f43b659bd484c91aaf555e190)
        echo "ok   the tarball's dsql-token signs the published token" ;;
    *) echo "FAIL the tarball's dsql-token: $out"; fail=1 ;;
esac
exit $fail

#!/bin/sh
# The installed CMake package works for an outside project: make install
# into a staging root (DESTDIR), then test/cmake-consumer (find_package(
# dsqlauth 0.1 COMPONENTS pq odbc), linking dsqlauth::dsqlauth, ::pq and
# ::odbc) configures and builds against it with Debian's cmake, links the
# three shared libraries and runs. A request for a version the package does
# not meet, or for a component that is not installed, must fail.
set -u
B=${B:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v cmake >/dev/null || { echo "FAIL cmake not found (scripts/install-deps installs it)"; exit 1; }
prefix=/opt/dsqlauth-test
make -s install B="$B" DESTDIR="$tmp/root" PREFIX=$prefix >/dev/null || { echo "FAIL make install"; exit 1; }
root=$tmp/root$prefix
for f in dsqlauthConfig.cmake dsqlauthConfigVersion.cmake; do
    [ -f "$root/lib/cmake/dsqlauth/$f" ] || { echo "FAIL not installed: lib/cmake/dsqlauth/$f"; exit 1; }
done
echo "ok   installed lib/cmake/dsqlauth/dsqlauthConfig.cmake and its version file"

# a sanitizer build of the libraries needs the sanitizer runtime in the program
san=${SANITIZE:+-fsanitize=$SANITIZE}
cmake_build() { # $1 = build dir, then extra cmake arguments
    dir=$1; shift
    cmake -S "$src" -B "$dir" -DCMAKE_C_COMPILER="${CC:-cc}" -DCMAKE_PREFIX_PATH="$root" \
        -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" "$@" >"$dir.log" 2>&1 &&
        cmake --build "$dir" >>"$dir.log" 2>&1
}
src=test/cmake-consumer
cmake_build "$tmp/b" || { echo "FAIL cmake consumer build:"; tail -30 "$tmp/b.log"; exit 1; }
echo "ok   test/cmake-consumer configures and builds with find_package(dsqlauth 0.1 COMPONENTS pq odbc)"
needed=$(readelf -d "$tmp/b/consumer" | awk '/NEEDED/ {print $5}' | tr -d '[]' | tr '\n' ' ')
for l in libdsqlauth.so.0 libdsqlauth-pq.so.0 libdsqlauth-odbc.so.0; do
    case " $needed" in
        *" $l "*) ;;
        *) echo "FAIL the consumer does not link $l (NEEDED: $needed)"; exit 1 ;;
    esac
done
echo "ok   the consumer links libdsqlauth.so.0, libdsqlauth-pq.so.0, libdsqlauth-odbc.so.0"
out=$(LD_LIBRARY_PATH=$root/lib "$tmp/b/consumer") || { echo "FAIL the consumer: $out"; exit 1; }
case "$out" in
    *"X-Amz-Signature=5ac084bc7cabccc19a52a5d1b5c24b50d3ce143f43b659bd484c91aaf555e190"*"quoted {a}}b}"*)
        echo "ok   the consumer signs the published token and calls both adapters" ;;
    *) echo "FAIL the consumer printed: $out"; exit 1 ;;
esac

# the package refuses what it cannot give
mkdir "$tmp/wrong"
sed 's/find_package(dsqlauth 0.1 /find_package(dsqlauth 0.2 /' $src/CMakeLists.txt >"$tmp/wrong/CMakeLists.txt"
cp $src/main.c "$tmp/wrong/"
src=$tmp/wrong
if cmake_build "$tmp/bv"; then
    echo "FAIL find_package(dsqlauth 0.2) accepted version 0.1"; exit 1
fi
grep -q 'compatible with requested version "0.2"' "$tmp/bv.log" ||
    { echo "FAIL find_package(dsqlauth 0.2) failed for another reason:"; tail -20 "$tmp/bv.log"; exit 1; }
echo "ok   find_package(dsqlauth 0.2) is refused (0.1.x only meets 0.1)"
rm -f "$root"/lib/libdsqlauth-odbc.*
cp test/cmake-consumer/CMakeLists.txt "$tmp/wrong/"
if cmake_build "$tmp/bc"; then
    echo "FAIL find_package(... COMPONENTS odbc) succeeded without libdsqlauth-odbc"; exit 1
fi
grep -q "component 'odbc' is not installed" "$tmp/bc.log" ||
    { echo "FAIL a missing component failed for another reason:"; tail -20 "$tmp/bc.log"; exit 1; }
echo "ok   a missing component (odbc) makes find_package fail and names it"

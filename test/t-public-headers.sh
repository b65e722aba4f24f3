#!/bin/sh
# Tools, adapters and examples are users of the library like any other
# program: their #include "..." lines name only public headers (include/),
# their own directory's headers, or the tools' shared code (tools/*/),
# never the core's private ones (lib/, lib/creds/). The Makefile compiles
# them without -Ilib, so a private include also fails the build; this test
# names the file and line.
set -u
bad=0
n=0
for f in $(find tools adapters examples -name '*.[ch]' | sort); do
    dir=$(dirname "$f")
    for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        n=$((n + 1))
        found=no
        for d in "$dir" include tools/*; do
            [ -f "$d/$h" ] && { found=yes; break; }
        done
        [ $found = yes ] && continue
        line=$(grep -n "#[[:space:]]*include[[:space:]]*\"$h\"" "$f" | head -1 | cut -d: -f1)
        if [ -f "lib/$h" ] || [ -f "lib/creds/$h" ]; then
            echo "FAIL $f:$line includes the private header \"$h\" (lib/)"
        else
            echo "FAIL $f:$line includes \"$h\", which is no public header"
        fi
        bad=1
    done
done
[ $bad -eq 0 ] && echo "ok   tools/, adapters/, examples/: $n #include \"...\" lines, none of them a private header"
exit $bad

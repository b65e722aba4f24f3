#!/bin/sh
# Struct layout is ABI: the size, alignment and member offsets of every
# public struct and the value of every public enum constant (printed by
# test/abi_layout.c) must equal test/data/abi-layout.txt, which records them
# under the sonames of the three libraries (libdsqlauth.so.0,
# libdsqlauth-pq.so.0, libdsqlauth-odbc.so.0). Only-grow from 0.1 on: every
# line of the 0.1 baseline, test/data/abi-0.1/abi-layout.txt (committed with
# the 0.1 API and never edited; it needs no git tag), is still in the layout
# this build prints, as long as the sonames are the baseline's. So
# regenerating abi-layout.txt cannot launder an incompatible change; that
# needs a new soname (SOVERSION in the Makefile). doc/ABI.md says how to make
# compatible and incompatible changes.
#   test/t-abi.sh --update   rewrite test/data/abi-layout.txt (never the baseline)
set -u
B=${B:-build}
CC=${CC:-cc}
BASELINE=${ABI_BASELINE_DIR:-test/data/abi-0.1}/abi-layout.txt
file=test/data/abi-layout.txt
prog=$B/test/abi_layout
libs="libdsqlauth libdsqlauth-pq libdsqlauth-odbc"
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in "$prog" $(for l in $libs; do echo "$B/$l.so"; done); do
    [ -e "$p" ] || { echo "FAIL $p is missing (make check builds it)"; exit 1; }
done

sonames=$(for l in $libs; do objdump -p "$B/$l.so" | awk '$1 == "SONAME" {print $2}'; done)
soname=$(echo $sonames)
layout() { # $1 = layout program; the file's content for this build
    for n in $sonames; do echo "soname $n"; done
    echo "arch $(uname -m)"
    "$1"
}
layout "$prog" >"$tmp/now" || { echo "FAIL $prog"; exit 1; }
if [ "${1:-}" = --update ]; then
    cp "$tmp/now" "$file" && echo "wrote $file for $soname"
    exit 0
fi
[ -f "$file" ] || { echo "FAIL $file is missing (make abi-update writes it)"; exit 1; }

# 1. abi_layout.c lists every struct member and enum constant in include/.
python3 - include/dsqlauth/*.h >"$tmp/declared" <<'PY'
import re, sys
out = []
for path in sys.argv[1:]:
    text = re.sub(r'/\*.*?\*/|//[^\n]*', '', open(path).read(), flags=re.S)
    for m in re.finditer(r'typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*(\w+)\s*;', text, re.S):
        name = m.group(3)
        out.append('struct ' + name)
        for decl in m.group(2).split(';'):
            decl = decl.strip()
            if not decl:
                continue
            f = re.search(r'\(\s*\*\s*(\w+)\s*\)', decl)
            names = [f.group(1)] if f else \
                [re.search(r'(\w+)\s*(\[[^\]]*\])?\s*$', p.strip()).group(1) for p in decl.split(',')]
            out += ['member %s.%s' % (name, n) for n in names]
    for m in re.finditer(r'typedef\s+enum\s+\w*\s*\{(.*?)\}', text, re.S):
        out += ['enum ' + c.split('=')[0].strip() for c in m.group(1).split(',') if c.strip()]
print('\n'.join(sorted(out)))
PY
awk '$1 == "struct" || $1 == "enum" || $1 == "member" {print $1, $2}' "$tmp/now" | sort >"$tmp/listed"
if diff -u "$tmp/declared" "$tmp/listed" >"$tmp/d"; then
    echo "ok   test/abi_layout.c covers every public struct member and enum constant ($(wc -l <"$tmp/listed"))"
else
    echo "FAIL test/abi_layout.c and include/ disagree (- declared, + listed):"; cat "$tmp/d"; fail=1
fi

sonames_of() { echo $(awk '$1 == "soname" {print $2}' "$1"); }
recorded_soname=$(sonames_of "$file")
recorded_arch=$(awk '$1 == "arch" {print $2}' "$file")
if [ "$recorded_arch" != "$(uname -m)" ]; then
    echo "ok   layout recorded for $recorded_arch; this is $(uname -m): comparison skipped"
    exit $fail
fi

# 2. The layout equals the committed one.
if diff -u "$file" "$tmp/now" >"$tmp/d"; then
    echo "ok   layout of $(grep -c '^struct' "$tmp/now") structs, $(grep -c '^enum' "$tmp/now") enum constants == $file ($soname)"
elif [ "$recorded_soname" = "$soname" ]; then
    echo "FAIL the public layout changed under the same soname $soname (- committed, + now):"
    cat "$tmp/d"
    echo "     An incompatible change needs a new soname: bump SOVERSION in the Makefile, then"
    echo "     run 'make abi-update' and commit $file. A compatible one (a new struct) only needs"
    echo "     'make abi-update'. See doc/ABI.md."
    fail=1
else
    echo "FAIL $file records $recorded_soname, the library is $soname: run 'make abi-update'"
    fail=1
fi

# 3. From 0.1 on the layout only grows under the same sonames: every line
#    of the 0.1 baseline is in the layout this build prints.
grows() { # $1 = older layout, $2 = newer; prints the lines $2 lost
    sort "$1" >"$tmp/g1"; sort "$2" >"$tmp/g2"; comm -23 "$tmp/g1" "$tmp/g2"
}
if [ ! -f "$BASELINE" ]; then
    echo "FAIL the 0.1 baseline $BASELINE is missing"; fail=1
elif [ "$(sonames_of "$BASELINE")" != "$(sonames_of "$tmp/now")" ] || \
     [ "$(awk '$1 == "arch" {print $2}' "$BASELINE")" != "$(uname -m)" ]; then
    echo "ok   $BASELINE binds $(sonames_of "$BASELINE") on its arch; this build is $soname on $(uname -m): not compared"
else
    lost=$(grows "$BASELINE" "$tmp/now")
    if [ -n "$lost" ]; then
        echo "FAIL the layout lost lines of the 0.1 baseline $BASELINE under $soname:"
        echo "$lost" | sed 's/^/     /'
        echo "     An incompatible change needs a new soname (SOVERSION in the Makefile)."
        fail=1
    else
        echo "ok   the layout keeps all $(wc -l <"$BASELINE") lines of the 0.1 baseline $BASELINE"
    fi
fi

# 4. The check notices a change: a member added to the middle of
#    dsql_token_request in a copy of the headers must change the layout,
#    and a file regenerated from it must fail the history rule.
cp -r include "$tmp/inc"
sed -i 's/^\(    const char \*user; \)/    int abi_selftest_inserted;\n\1/' "$tmp/inc/dsqlauth/token.h"
if ! grep -q 'int abi_selftest_inserted;' "$tmp/inc/dsqlauth/token.h"; then
    echo "FAIL self-test: could not edit dsql_token_request in a copy of token.h"; fail=1
else
    # shellcheck disable=SC2046
    if $CC -std=c11 -D_POSIX_C_SOURCE=200809L -I"$tmp/inc" $(pkg-config --cflags libpq 2>/dev/null) \
        -o "$tmp/abi_changed" test/abi_layout.c 2>"$tmp/cc.err"; then
        layout "$tmp/abi_changed" >"$tmp/changed"
        lost=$(grows "$tmp/now" "$tmp/changed")
        if cmp -s "$tmp/now" "$tmp/changed" || [ -z "$lost" ]; then
            echo "FAIL self-test: a member inserted into dsql_token_request went unnoticed"; fail=1
        else
            echo "ok   self-test: inserting a member into dsql_token_request is caught ($(echo "$lost" | wc -l) lines differ)"
        fi
    else
        echo "FAIL self-test: compiling test/abi_layout.c against the edited headers:"
        cat "$tmp/cc.err"; fail=1
    fi
fi
exit $fail

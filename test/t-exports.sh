#!/bin/sh
# The public API is a promise, kept per library (libdsqlauth, libdsqlauth-pq,
# libdsqlauth-odbc). For each one:
#  - every public header names its library on a "Library:" line;
#  - the functions its .so exports are exactly the DSQL_API / DSQL_ODBC_API
#    declarations of its headers and its committed list
#    test/data/exports/<library>.txt;
#  - each carries the library's version node (DSQLAUTH_0.1,
#    DSQLAUTH_PQ_0.1, DSQLAUTH_ODBC_0.1), nothing else is exported, the
#    soname is lib<name>.so.0, and each function has a man page;
#  - from the 0.1 release on (git tag $ABI_BASELINE, default v0.1.0) the
#    list only grows: every name the release exported is still exported, in
#    the node it was released in. Before the tag exists the 0.1 API may still
#    change; doc/ABI.md says what 0.1 promises.
set -u
B=${B:-build}
BASELINE=${ABI_BASELINE:-v0.1.0}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# header -> library, from the "Library:" line of each public header
python3 - include/dsqlauth.h include/dsqlauth/*.h >"$tmp/owners" <<'PY'
import re, sys
for path in sys.argv[1:]:
    libs = re.findall(r'^ \*\s*Library:\s*(libdsqlauth(?:-pq|-odbc)?)\b', open(path).read(), re.M)
    print(path, libs[0] if len(libs) == 1 else "NONE")
PY
bad=$(awk '$2 == "NONE" {print $1}' "$tmp/owners")
if [ -z "$bad" ]; then
    echo "ok   every public header names its library ($(wc -l <"$tmp/owners") headers)"
else
    echo "FAIL headers without exactly one 'Library:' line: $bad"; fail=1
fi

# declared <headers...>: the DSQL_API / DSQL_ODBC_API functions in them
declared() {
    python3 - "$@" <<'PY'
import re, sys
names = set()
for path in sys.argv[1:]:
    text = re.sub(r'/\*.*?\*/', '', open(path).read(), flags=re.S)
    for m in re.finditer(r'DSQL_(?:ODBC_)?API\s+[^;{(#]*?\b(dsql_\w+)\s*\(', text):
        names.add(m.group(1))
print("\n".join(sorted(names)))
PY
}

# lost <older list> <newer list>: names the newer one dropped
lost() { sort -u "$1" >"$tmp/l1"; sort -u "$2" >"$tmp/l2"; comm -23 "$tmp/l1" "$tmp/l2"; }

is_tagged=no
git rev-parse -q --verify "$BASELINE^{commit}" >/dev/null 2>&1 && is_tagged=yes

# check_library <name> <version node prefix> <symbol prefix>
check_library() {
    lib=$1 node=$2 sym=$3
    so=$B/$lib.so
    list=test/data/exports/$lib.txt
    [ -e "$so" ] || { echo "FAIL $so is missing (make check builds it)"; fail=1; return; }
    # shellcheck disable=SC2046
    declared $(awk -v l="$lib" '$2 == l {print $1}' "$tmp/owners") >"$tmp/declared"
    nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u >"$tmp/exported"
    n=$(wc -l <"$tmp/exported")
    if diff -u "$tmp/declared" "$tmp/exported" >"$tmp/d"; then
        echo "ok   $lib: exports == its headers' declarations ($n functions)"
    else
        echo "FAIL $lib: exported functions differ from its headers' declarations:"; cat "$tmp/d"; fail=1
    fi
    if diff -u "$list" "$tmp/exported" >"$tmp/d"; then
        echo "ok   $lib: exports == $list"
    else
        echo "FAIL $lib: exports differ from $list (add new names there):"; cat "$tmp/d"; fail=1
    fi
    nm -D --defined-only "$so" | awk '$3 ~ /^dsql_/ {print $3}' >"$tmp/versioned"
    sed 's/^[^@]*@*//' "$tmp/versioned" | sort -u >"$tmp/nodes"
    if [ "$(cat "$tmp/nodes")" = "${node}0.1" ]; then
        echo "ok   $lib: every export is in the one version node ${node}0.1"
    elif grep -qvE "^${node}[0-9]+\.[0-9]+$" "$tmp/nodes" || ! grep -qx "${node}0.1" "$tmp/nodes"; then
        echo "FAIL $lib: version nodes $(tr '\n' ' ' <"$tmp/nodes")(want ${node}0.1, later ${node}x.y)"; fail=1
    else
        echo "ok   $lib: version nodes $(tr '\n' ' ' <"$tmp/nodes")"
    fi
    others=$(nm -D --defined-only "$so" | awk -v p="^${sym}" -v n="^${node}" \
        '$2 ~ /[TDBRVWi]/ && $3 !~ p && $3 !~ n {print $3}')
    if [ -z "$others" ]; then
        echo "ok   $lib: nothing but ${sym}* exported"
    else
        echo "FAIL $lib: other exports: $others"; fail=1
    fi
    missing=""
    while read -r name; do
        [ -f "doc/man/$name.3" ] || missing="$missing $name"
    done <"$tmp/exported"
    if [ -z "$missing" ]; then
        echo "ok   $lib: every exported function has doc/man/<name>.3"
    else
        echo "FAIL $lib: no man page for:$missing"; fail=1
    fi
    soname=$(objdump -p "$so" | awk '$1 == "SONAME" {print $2}')
    if [ "$soname" = "$lib.so.0" ]; then echo "ok   $lib: soname $soname"; else echo "FAIL $lib: soname '$soname'"; fail=1; fi
    if [ $is_tagged = no ]; then
        echo "ok   $lib: no $BASELINE tag yet: the 0.1 list is not frozen (only-grow starts at the tag)"
        return
    fi
    if ! git show "$BASELINE:$list" >"$tmp/released" 2>/dev/null; then
        echo "ok   $lib: not in $BASELINE: nothing released to keep"
        return
    fi
    gone=$(lost "$tmp/released" "$tmp/exported")
    moved=$(grep -v "@@${node}0\.1\$" "$tmp/versioned" | sed 's/@.*//' | sort -u | comm -12 - "$tmp/l1")
    if [ -z "$gone$moved" ]; then
        echo "ok   $lib: every function released in $BASELINE is still exported in ${node}0.1"
    else
        echo "FAIL $lib: $BASELINE exported these, now gone or in another node: $gone $moved"; fail=1
    fi
}

check_library libdsqlauth DSQLAUTH_ dsql_
check_library libdsqlauth-pq DSQLAUTH_PQ_ dsql_pq_
check_library libdsqlauth-odbc DSQLAUTH_ODBC_ dsql_odbc_

# the only-grow rule notices a removal: a released list with one more name
{ cat test/data/exports/libdsqlauth.txt; echo dsql_selftest_removed; } >"$tmp/released"
if [ "$(lost "$tmp/released" test/data/exports/libdsqlauth.txt)" = dsql_selftest_removed ]; then
    echo "ok   self-test: a released name that disappears is caught"
else
    echo "FAIL self-test: a removed name went unnoticed"; fail=1
fi
exit $fail

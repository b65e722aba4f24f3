#!/bin/sh
# The public API is a promise, kept per library (libdsqlauth, libdsqlauth-pq,
# libdsqlauth-odbc). For each one:
#  - every public header names its library on a "Library:" line;
#  - the functions its .so exports are exactly the DSQL_API / DSQL_ODBC_API
#    declarations of its headers and its committed list
#    test/data/exports/<library>.txt (what it exports today);
#  - its version nodes are DSQLAUTH_0.1 (DSQLAUTH_PQ_0.1, DSQLAUTH_ODBC_0.1)
#    and later ones, nothing else is exported, the soname is
#    lib<name>.so.0, and each function has a man page;
#  - only-grow from 0.1 on: the 0.1 baseline, test/data/abi-0.1/<library>.txt
#    (committed with the 0.1 API and never edited; it needs no git tag), is
#    the 0.1 node exactly: every name in it is still exported in the 0.1 node,
#    and a name not in it is not (a later function goes into a later node).
#    doc/ABI.md says what 0.1 promises.
set -u
B=${B:-build}
BASELINE=${ABI_BASELINE_DIR:-test/data/abi-0.1}
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

# against_release <released list> <versioned exports (name@@NODE)> <node prefix>:
# one line per break of the only-grow rule, nothing when it holds
against_release() {
    sort -u "$1" >"$tmp/r_rel"
    sed 's/@.*//' "$2" | sort -u >"$tmp/r_all"
    grep "@@*${3}0\.1\$" "$2" | sed 's/@.*//' | sort -u >"$tmp/r_01"
    comm -23 "$tmp/r_rel" "$tmp/r_all" | sed 's/^/removed: /'
    comm -23 "$tmp/r_all" "$tmp/r_01" | comm -12 - "$tmp/r_rel" |
        sed "s/^/not in ${3}0.1 any more: /"
    comm -23 "$tmp/r_01" "$tmp/r_rel" | sed "s/^/added to ${3}0.1 after its release (use a new node): /"
}

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
    released=$BASELINE/$lib.txt
    if [ ! -f "$released" ]; then
        echo "FAIL $lib: the 0.1 baseline $released is missing"; fail=1
        return
    fi
    against_release "$released" "$tmp/versioned" "$node" >"$tmp/breaks"
    if [ ! -s "$tmp/breaks" ]; then
        echo "ok   $lib: ${node}0.1 is exactly the $(wc -l <"$released") functions of $released"
    else
        echo "FAIL $lib: the 0.1 ABI changed (an incompatible change needs a new soname; see doc/ABI.md):"
        sed 's/^/     /' "$tmp/breaks"; fail=1
    fi
}

check_library libdsqlauth DSQLAUTH_ dsql_
check_library libdsqlauth-pq DSQLAUTH_PQ_ dsql_pq_
check_library libdsqlauth-odbc DSQLAUTH_ODBC_ dsql_odbc_

# self-test: the only-grow rule notices a removed name, a name moved out of
# the 0.1 node and a name added to it
printf 'dsql_a\ndsql_b\ndsql_c\n' >"$tmp/st_rel"
printf 'dsql_a@@DSQLAUTH_0.1\ndsql_b@@DSQLAUTH_0.1\ndsql_c@@DSQLAUTH_0.1\ndsql_d@@DSQLAUTH_0.2\n' >"$tmp/st_ok"
printf 'dsql_a@@DSQLAUTH_0.1\ndsql_b@@DSQLAUTH_0.2\ndsql_d@@DSQLAUTH_0.1\n' >"$tmp/st_bad"
against_release "$tmp/st_rel" "$tmp/st_ok" DSQLAUTH_ >"$tmp/st_ok_out"
against_release "$tmp/st_rel" "$tmp/st_bad" DSQLAUTH_ >"$tmp/st_bad_out"
if [ ! -s "$tmp/st_ok_out" ] && grep -q '^removed: dsql_c$' "$tmp/st_bad_out" &&
   grep -q '^not in DSQLAUTH_0.1 any more: dsql_b$' "$tmp/st_bad_out" &&
   grep -q '^added to DSQLAUTH_0.1 after its release (use a new node): dsql_d$' "$tmp/st_bad_out"; then
    echo "ok   self-test: a removed name, a name moved to another node and a late 0.1 name are caught; a new node is not"
else
    echo "FAIL self-test: the only-grow rule missed a change:"; cat "$tmp/st_ok_out" "$tmp/st_bad_out"; fail=1
fi
exit $fail

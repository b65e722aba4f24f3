#!/bin/sh
# The public API is a promise: the symbols libdsqlauth.so exports must be
# exactly the DSQL_API functions in the headers and the committed list
# (test/data/exports.txt: names may be added, never removed), each must carry
# the DSQLAUTH_ version node, and each must have a man page.
set -u
B=${B:-build}
fail=0
so=$B/libdsqlauth.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u >"$tmp/exported"
python3 - include/dsqlauth/*.h >"$tmp/declared" <<'PY'
import re, sys
names = set()
for path in sys.argv[1:]:
    text = re.sub(r'/\*.*?\*/', '', open(path).read(), flags=re.S)
    for m in re.finditer(r'DSQL_API\s+[^;{(]*?\b(dsql_\w+)\s*\(', text):
        names.add(m.group(1))
print("\n".join(sorted(names)))
PY
sort -u test/data/exports.txt >"$tmp/committed"

if diff -u "$tmp/declared" "$tmp/exported" >"$tmp/d1"; then
    echo "ok   exports == DSQL_API declarations ($(wc -l <"$tmp/exported") functions)"
else
    echo "FAIL exported symbols differ from the headers:"; cat "$tmp/d1"; fail=1
fi
if diff -u "$tmp/committed" "$tmp/exported" >"$tmp/d2"; then
    echo "ok   exports == test/data/exports.txt"
else
    echo "FAIL exports differ from test/data/exports.txt (add new names there; never remove):"
    cat "$tmp/d2"; fail=1
fi
unversioned=$(objdump -T "$so" | awk '$NF ~ /^dsql_/ && $(NF-1) !~ /DSQLAUTH_/ {print $NF}')
if [ -z "$unversioned" ]; then
    echo "ok   every export carries a DSQLAUTH_ version"
else
    echo "FAIL unversioned exports: $unversioned"; fail=1
fi
others=$(nm -D --defined-only "$so" | awk '$2 ~ /[TDBR]/ && $3 !~ /^dsql_/ && $3 !~ /^DSQLAUTH_/ {print $3}')
if [ -z "$others" ]; then
    echo "ok   nothing but dsql_* exported"
else
    echo "FAIL non-dsql_ exports: $others"; fail=1
fi
missing=""
while read -r name; do
    [ -f "doc/man/$name.3" ] || missing="$missing $name"
done <"$tmp/exported"
if [ -z "$missing" ]; then
    echo "ok   every exported function has doc/man/<name>.3"
else
    echo "FAIL no man page for:$missing"; fail=1
fi
soname=$(objdump -p "$so" | awk '$1 == "SONAME" {print $2}')
if [ "$soname" = "libdsqlauth.so.0" ]; then echo "ok   soname $soname"; else echo "FAIL soname '$soname'"; fail=1; fi
exit $fail

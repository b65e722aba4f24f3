#!/bin/sh
# Editing a header rebuilds what includes it (the compilers' -MMD
# dependency files, included by the Makefile), wherever the header lives:
# for each header below, `make -n -W <header>` (as if it had just been
# edited) on the built tree must recompile a source that includes it, and
# must not recompile one that does not.
set -u
B=${B:-build}
fail=0
[ -e "$B/libdsqlauth.a" ] || { echo "FAIL $B is not built (make check builds it)"; exit 1; }
# what_if <header> <target>: the commands make would run after an edit
what_if() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -n -W "$1" B="$B" CC="${CC:-cc}" \
    SANITIZE="${SANITIZE:-}" "$2" 2>&1; }
# expect <header> <target> <source that must be compiled> [<source that must not>]
expect() {
    out=$(what_if "$1" "$2")
    if ! echo "$out" | grep -q -- " $3 "; then
        echo "FAIL editing $1 does not recompile $3 for $2"; fail=1
    elif [ -n "${4:-}" ] && echo "$out" | grep -q -- " $4 "; then
        echo "FAIL editing $1 recompiles $4, which does not include it"; fail=1
    else
        echo "ok   editing $1 recompiles $3${4:+, not $4}"
    fi
}
expect lib/creds/cache.h "$B/libdsqlauth.a" lib/creds/cache.c lib/hmac.c
expect lib/creds/profile_parser.h "$B/libdsqlauth.a" lib/creds/profile_parser.c lib/token.c
expect include/dsqlauth/token.h "$B/libdsqlauth.a" lib/token.c
expect adapters/libpq/pool_internal.h "$B/libdsqlauth-pq.a" adapters/libpq/pool.c lib/token.c
expect test/testutil.h "$B/test/check_token" test/check_token.c lib/token.c
expect tools/pgserver/wire.h "$B/dsql-local" tools/pgserver/wire.c lib/token.c
exit $fail

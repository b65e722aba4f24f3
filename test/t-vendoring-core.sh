#!/bin/sh
# The token core vendored alone: the files listed in lib/VENDOR-CORE (the
# same list doc/VENDORING.md quotes) compile as POSIX C11 with -Wall -Wextra
# -Werror and no configure, and a program linked from them with nothing but -lcrypto
# (and -pthread) signs the published token and mints one through the
# env provider -> cache -> signing token provider path (into a caller
# buffer and into a heap buffer).
set -u
CC=${CC:-cc}
top=$(pwd)
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

core=$(grep -v '^#' lib/VENDOR-CORE | grep -v '^[[:space:]]*$')
[ -n "$core" ] || { echo "FAIL lib/VENDOR-CORE is empty"; exit 1; }

# The doc quotes the list between two marker lines; it must equal the file.
sed -n '/^<!-- BEGIN VENDOR-CORE/,/^<!-- END VENDOR-CORE/p' doc/VENDORING.md |
    grep '^lib/' >"$tmp/doc-list"
echo "$core" >"$tmp/core-list"
if diff -u "$tmp/core-list" "$tmp/doc-list" >"$tmp/d"; then
    echo "ok   doc/VENDORING.md quotes lib/VENDOR-CORE ($(wc -l <"$tmp/core-list") files)"
else
    echo "FAIL doc/VENDORING.md's core list differs from lib/VENDOR-CORE:"; cat "$tmp/d"; fail=1
fi
# Every source file in lib/ is accounted for in the doc's dependency table.
missing=""
for f in lib/*.c lib/creds/*.c; do
    grep -q "$f" doc/VENDORING.md || missing="$missing $f"
done
if [ -z "$missing" ]; then
    echo "ok   doc/VENDORING.md names every lib/ source file"
else
    echo "FAIL doc/VENDORING.md does not mention:$missing"; fail=1
fi
# No core file includes an optional dependency's header.
bad=""
for f in $core; do
    [ -f "$f" ] || { bad="$bad $f(missing)"; continue; }
    grep -Eq '#[[:space:]]*include[[:space:]]*<(curl/|cjson/|cJSON|expat)' "$f" && bad="$bad $f"
done
if [ -z "$bad" ]; then
    echo "ok   no core file includes curl, cJSON or expat headers"
else
    echo "FAIL core files with optional dependencies:$bad"; fail=1
fi

mkdir "$tmp/objs"
for f in $core; do
    o="$tmp/objs/$(echo "$f" | tr / _).o"
    $CC -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -I"$top/include" -c "$f" -o "$o" \
        2>"$tmp/cc.err" ||
        { echo "FAIL vendored compile of $f:"; cat "$tmp/cc.err"; exit 1; }
done
cat >"$tmp/prog.c" <<'C'
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dsqlauth.h>

int main(void)
{
    dsql_error err;
    char buf[2048];
    size_t len = 0;
    dsql_credentials c = {"ACCESS_KEY", "SECRET_KEY", "SESSION_TOKEN", 0};
    dsql_token_request p = {DSQL_STRUCT_VERSION, "test.dsql.us-east-1.on.aws", "admin", NULL,
                           900, 1731001173};
    if (dsql_token_generate(&p, &c, buf, sizeof buf, NULL, &err) != DSQL_OK) {
        fprintf(stderr, "generate: %s\n", err.message);
        return 1;
    }
    puts(buf);

    /* the path a program without libcurl uses: keys from the environment */
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    dsql_credentials_provider *env = dsql_credentials_provider_env(&err);
    dsql_credentials_provider *cached = env ? dsql_credentials_provider_cached(env, &err) : NULL;
    dsql_token_provider *tp = cached ? dsql_token_provider_signing(cached, NULL, &err) : NULL;
    dsql_token_request req = {DSQL_STRUCT_VERSION, "abc.dsql.eu-west-1.on.aws", "app", NULL, 0, 0};
    if (!tp || dsql_token_provider_get(tp, &req, buf, sizeof buf, &len, &err) != DSQL_OK) {
        fprintf(stderr, "provider: %s\n", err.message);
        return 1;
    }
    /* the heap-buffer variant every adapter uses is in the core too */
    char *heap = NULL;
    size_t heap_len = 0;
    if (dsql_token_provider_get_alloc(tp, &req, &heap, &heap_len, &err) != DSQL_OK ||
        heap_len != strlen(heap) || strncmp(heap, buf, 60) != 0) {
        fprintf(stderr, "provider token_alloc: %s\n", heap ? heap : err.message);
        return 1;
    }
    dsql_token_free(heap);
    dsql_token_provider_free(tp);
    static const char prefix[] = "abc.dsql.eu-west-1.on.aws/?Action=DbConnect&";
    if (len != strlen(buf) || strncmp(buf, prefix, sizeof prefix - 1) != 0 ||
        !strstr(buf, "AKIDEXAMPLE%2F") || !strstr(buf, "%2Feu-west-1%2Fdsql%2Faws4_request")) {
        fprintf(stderr, "provider token: %s\n", buf);
        return 1;
    }

    /* configuration parsing is in the core too */
    dsql_config *cfg = dsql_config_new(&err);
    dsql_config_host h;
    if (!cfg ||
        dsql_config_parse(cfg, "postgresql://app@abc.dsql.eu-west-1.on.aws/postgres", &err) ||
        dsql_config_resolve(cfg, &err) || dsql_config_host_at(cfg, 0, &h, &err)) {
        fprintf(stderr, "config: %s\n", err.message);
        return 1;
    }
    printf("config: %s %u %s\n", h.signing_host, h.port, h.region);
    dsql_config_free(cfg);
    printf("%s\n", dsql_version());
    return 0;
}
C
$CC -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -I"$top/include" "$tmp/prog.c" "$tmp"/objs/*.o \
    -o "$tmp/prog" -lcrypto -pthread 2>"$tmp/ld.err" ||
    { echo "FAIL core link with only -lcrypto:"; cat "$tmp/ld.err"; exit 1; }
echo "ok   core links with only -lcrypto -pthread"
needed=$(objdump -p "$tmp/prog" | awk '$1 == "NEEDED" {print $2}' | tr '\n' ' ')
case "$needed" in
    *curl* | *cjson* | *expat*) echo "FAIL core program needs: $needed"; fail=1 ;;
    *) echo "ok   NEEDED: $needed" ;;
esac
check_output() { # $1 = program, $2 = what it was built by
    out=$(env -u AWS_PROFILE "$1" 2>&1) || { echo "FAIL core program ($2): $out"; fail=1; return; }
    case "$out" in
        *X-Amz-Signature=5ac084bc7cabccc19a52a5d1b5c24b50d3ce143f43b659bd484c91aaf555e190*"config: abc.dsql.eu-west-1.on.aws 5432 eu-west-1"*)
            echo "ok   $2: signs the published token, env provider token, config" ;;
        *) echo "FAIL core program output ($2): $out"; fail=1 ;;
    esac
}
check_output "$tmp/prog" "core-only program"

# The doc's build blocks (core only; everything), each run as written in a
# project that copied lib/ and include/ into third_party/dsqlauth/ (cc
# there means $CC).
nblocks=$(grep -c '^<!-- test/t-vendoring-core.sh runs the next block' doc/VENDORING.md)
[ "$nblocks" -ge 2 ] || { echo "FAIL doc/VENDORING.md: expected two tested build blocks, found $nblocks"; fail=1; }
n=0
while [ $n -lt "$nblocks" ]; do
    n=$((n + 1))
    proj=$tmp/project$n
    mkdir -p "$proj/third_party/dsqlauth"
    cp -r include lib "$proj/third_party/dsqlauth/"
    cp "$tmp/prog.c" "$proj/app.c"
    awk -v want="$n" '/^<!-- test\/t-vendoring-core.sh runs the next block/ {k++; f = (k == want); next}
         f && /^```sh/ {g = 1; next}
         g && /^```/ {exit}
         g {print}' doc/VENDORING.md >"$tmp/doc-block$n.sh"
    if [ ! -s "$tmp/doc-block$n.sh" ]; then
        echo "FAIL doc/VENDORING.md: no build block after marker $n"; fail=1
    elif (cd "$proj" && cc() { command $CC "$@"; } && set -e && . "$tmp/doc-block$n.sh") \
        >"$tmp/doc$n.log" 2>&1; then
        check_output "$proj/app" "doc/VENDORING.md build block $n, run as written"
    else
        echo "FAIL doc/VENDORING.md's build block $n:"; cat "$tmp/doc-block$n.sh" "$tmp/doc$n.log"; fail=1
    fi
done
exit $fail

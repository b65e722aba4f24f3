#!/bin/sh
# dsql-token CLI: output, exit codes, error messages, exec.
set -u
B=${B:-build}
T=$B/dsql-token
fail=0
check() { # description, command...; the command must succeed
    desc=$1; shift
    if "$@"; then echo "ok   $desc"; else echo "FAIL $desc"; fail=1; fi
}
export AWS_ACCESS_KEY_ID=ACCESS_KEY AWS_SECRET_ACCESS_KEY=SECRET_KEY AWS_SESSION_TOKEN=SESSION_TOKEN
unset AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSSLMODE PGSSLROOTCERT PGPASSWORD PGSERVICE

out=$($T --hostname test.dsql.us-east-1.on.aws --time 2024-11-07T17:39:33Z)
check "admin token equals botocore's published one" test "$out" = "test.dsql.us-east-1.on.aws/?Action=DbConnectAdmin&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ACCESS_KEY%2F20241107%2Fus-east-1%2Fdsql%2Faws4_request&X-Amz-Date=20241107T173933Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=SESSION_TOKEN&X-Amz-Signature=5ac084bc7cabccc19a52a5d1b5c24b50d3ce143f43b659bd484c91aaf555e190"
lines=$($T --hostname test.dsql.us-east-1.on.aws | wc -l)
check "exactly one line on stdout" test "$lines" -eq 1
out=$($T --hostname test.dsql.us-east-1.on.aws --user app --expires-in 60 --time 2024-11-07T17:39:33Z)
check "non-admin user signs DbConnect" sh -c "echo '$out' | grep -q 'Action=DbConnect&'"
check "expires-in is used" sh -c "echo '$out' | grep -q 'X-Amz-Expires=60&'"
out=$($T --hostname a.dsql.us-east-1.on.aws --region eu-west-1 --time 2024-11-07T17:39:33Z)
check "explicit --region wins over the hostname's" sh -c "echo '$out' | grep -q '%2Feu-west-1%2Fdsql%2F'"
out=$($T --hostname localhost --region eu-west-1 --time 2024-11-07T17:39:33Z)
check "explicit region for a non-DSQL host" sh -c "echo '$out' | grep -q '%2Feu-west-1%2Fdsql%2F'"

expect_status() { # want, stderr-fragment, args...
    want=$1; frag=$2; shift 2
    err=$($T "$@" 2>&1 >/dev/null)
    st=$?
    if [ "$st" -eq "$want" ] && echo "$err" | grep -qF -- "$frag"; then
        echo "ok   exit $want: $frag"
    else
        echo "FAIL $* -> exit $st, stderr '$err' (wanted $want, '$frag')"; fail=1
    fi
}
expect_status 2 "no host: give --hostname, --cluster-id or a connection string, or set PGHOST"
expect_status 2 "give at most one of" --hostname a --cluster-id b
expect_status 2 "unknown option '--nope'" --nope
expect_status 2 "--expires-in '0' is not" --hostname h --expires-in 0
expect_status 2 "--expires-in '604801' is not" --hostname h --expires-in 604801
expect_status 2 "--time 'yesterday' is not" --hostname h --time yesterday
expect_status 2 "--time '2024-02-30T00:00:00Z' is not" --hostname h --time 2024-02-30T00:00:00Z
expect_status 2 "--time '2024-11-07T17:39:33' is not" --hostname h --time 2024-11-07T17:39:33
expect_status 2 "--time '2024-11-07T17:39:33Zx' is not" --hostname h --time 2024-11-07T17:39:33Zx
expect_status 2 "unexpected argument 'more'" a.dsql.us-east-1.on.aws more
expect_status 2 "give at most one of" --hostname h extra
expect_status 1 "is not an Aurora DSQL endpoint" --hostname localhost
expect_status 1 "cluster_id 'Not_An_Id' is invalid" --cluster-id Not_An_Id --region us-east-1
expect_status 1 "profile" --profile no-such-profile --hostname a.dsql.us-east-1.on.aws
expect_status 1 "invalid character" --hostname 'bad host' --region r
expect_status 2 "exec needs a program" exec --hostname h
AWS_SECRET_ACCESS_KEY= expect_status 1 "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not" --hostname a.dsql.us-east-1.on.aws

# every input form names the same signing host and region
ref=$($T --hostname abcdefghijklmnopqrstuvwxyz.dsql.us-east-2.on.aws --user app --time 2024-11-07T17:39:33Z)
for form in "--cluster-id abcdefghijklmnopqrstuvwxyz --region us-east-2" \
            "postgresql://app@abcdefghijklmnopqrstuvwxyz.dsql.us-east-2.on.aws:5432/postgres" \
            "host=abcdefghijklmnopqrstuvwxyz.dsql.us-east-2.on.aws"; do
    # shellcheck disable=SC2086
    out=$($T $form --user app --time 2024-11-07T17:39:33Z 2>&1)
    check "same token from: $form" test "$out" = "$ref"
done

# credentials and region from a profile (AWS_CONFIG_FILE), not the environment
tmp=$(mktemp -d)
cat >"$tmp/config" <<CFG
[profile ops]
region = eu-north-1
aws_access_key_id = AKIDFROMPROFILE
aws_secret_access_key = profile-secret
CFG
out=$(AWS_CONFIG_FILE=$tmp/config AWS_SHARED_CREDENTIALS_FILE=$tmp/none $T --profile ops --hostname db.internal.example --time 2024-11-07T17:39:33Z)
check "--profile gives credentials and region" sh -c "echo '$out' | grep -q 'Credential=AKIDFROMPROFILE%2F20241107%2Feu-north-1%2Fdsql'"
rm -rf "$tmp"

err=$(AWS_SECRET_ACCESS_KEY=TOPSECRETVALUE $T --verbose --hostname localhost 2>&1 >/dev/null)
check "no secret in stderr with --verbose" sh -c "! echo '$err' | grep -q TOPSECRETVALUE"

check "--version" sh -c "$T --version | grep -q '^dsql-token [0-9]'"
check "--help to stdout, exit 0" sh -c "$T --help | grep -q 'usage: dsql-token'"

out=$(PGUSER= PGHOST= $T exec --hostname c.dsql.us-east-1.on.aws --user app -- sh -c 'echo "$PGHOST $PGUSER $PGDATABASE $PGSSLMODE ${PGPASSWORD%%/*}"')
check "exec sets PG variables" test "$out" = "c.dsql.us-east-1.on.aws app postgres verify-full c.dsql.us-east-1.on.aws"
$T exec --hostname c.dsql.us-east-1.on.aws -- sh -c 'exit 7'
check "exec returns the program's status" test $? -eq 7
out=$(env -u PGPORT -u PGDATABASE -u PGHOST -u PGHOSTADDR $T exec "host=c.dsql.us-east-1.on.aws hostaddr=127.0.0.1 port=6543 dbname=shop" -- sh -c 'echo "$PGHOST $PGHOSTADDR $PGPORT $PGDATABASE"')
check "exec with a conninfo sets host, hostaddr, port, dbname" test "$out" = "c.dsql.us-east-1.on.aws 127.0.0.1 6543 shop"

# ---- item 7: no sslmode weaker than verify-full without --allow-insecure-tls ----
H=c.dsql.us-east-1.on.aws
tmp=$(mktemp -d)
chmod 755 "$tmp" # dsql-local's PostgreSQL (run as postgres under root) lives below
trap 'rm -rf "$tmp"' EXIT
refused() { # description, stderr-fragment, command...: exit 1, fragment on stderr, program not run
    desc=$1; frag=$2; shift 2
    rm -f "$tmp/ran"
    "$@" >"$tmp/out" 2>"$tmp/err"
    st=$?
    if [ "$st" -eq 1 ] && grep -qF -- "$frag" "$tmp/err" && grep -qF -- "--allow-insecure-tls" "$tmp/err" &&
       [ ! -e "$tmp/ran" ] && [ ! -s "$tmp/out" ]; then
        echo "ok   refused: $desc"
    else
        echo "FAIL $desc -> exit $st, stderr '$(cat "$tmp/err")', ran: $([ -e "$tmp/ran" ] && echo yes || echo no)"; fail=1
    fi
}
refused "PGSSLMODE=prefer dsql-token exec ... -- psql" "sslmode=prefer (from the environment, PGSSLMODE)" \
    env PGSSLMODE=prefer $T exec --hostname $H -- psql -c 'select 1'
for mode in disable allow prefer require verify-ca; do
    refused "PGSSLMODE=$mode exec" "sslmode=$mode" env PGSSLMODE=$mode $T exec --hostname $H -- touch "$tmp/ran"
    refused "sslmode=$mode in a conninfo" "sslmode=$mode (from the connection string)" \
        $T exec "host=$H sslmode=$mode" -- touch "$tmp/ran"
    refused "sslmode=$mode in a URI, printing" "sslmode=$mode" $T "postgresql://$H/postgres?sslmode=$mode"
done
out=$(PGSSLMODE=prefer $T exec --allow-insecure-tls --hostname $H -- sh -c 'echo "$PGSSLMODE"' 2>"$tmp/err")
check "--allow-insecure-tls passes the weak sslmode on" test "$out" = prefer
check "--allow-insecure-tls warns on stderr" grep -q "warning: sslmode=prefer" "$tmp/err"
out=$($T exec "host=$H sslmode=require allow_insecure_tls=1" -- sh -c 'echo "$PGSSLMODE"' 2>/dev/null)
check "allow_insecure_tls=1 in a conninfo is the same opt-in" test "$out" = require
out=$($T exec "postgresql://$H/postgres?ssl=true" -- sh -c 'echo "$PGSSLMODE"')
check "JDBC-style ssl=true is verify-full" test "$out" = verify-full
out=$(PGSSLMODE=verify-full $T exec --hostname $H -- sh -c 'echo "$PGSSLMODE"')
check "PGSSLMODE=verify-full is kept" test "$out" = verify-full

# ---- item 8: the token goes to the host it is signed for ----
# the child prints its PG variables, PGPASSWORD cut to the host it is for
cat >"$tmp/printenv.sh" <<'SH'
for v in PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSSLMODE PGSSLROOTCERT; do
    eval "echo $v=\${$v-unset}"
done
echo "PGPASSWORD=${PGPASSWORD%%/*}"
SH
P=prodclusteraaaaaaaaaaaaaaa.dsql.us-east-1.on.aws
inherited() { env PGHOST=local.dsql.us-east-1.on.aws PGHOSTADDR=127.0.0.1 PGPORT=7777 \
    PGSSLROOTCERT=/tmp/local-ca.pem PGUSER=admin PGDATABASE=postgres "$@"; }
want_env() { # description, expected lines..., reads $tmp/child
    desc=$1; shift
    printf '%s\n' "$@" >"$tmp/want"
    if diff "$tmp/want" "$tmp/child" >"$tmp/diff"; then echo "ok   $desc"; else
        echo "FAIL $desc:"; cat "$tmp/diff"; fail=1; fi
}
ROOT=$(if [ "$(pkg-config --modversion libpq 2>/dev/null | cut -d. -f1)" -ge 16 ] 2>/dev/null; then
           echo system; else echo /etc/ssl/certs/ca-certificates.crt; fi)
inherited $T exec --hostname $P -- sh "$tmp/printenv.sh" >"$tmp/child" 2>"$tmp/err"
want_env "--hostname other than PGHOST: PGHOST replaced, PGHOSTADDR/PGPORT/PGSSLROOTCERT dropped" \
    PGHOST=$P PGHOSTADDR=unset PGPORT=5432 PGUSER=admin PGDATABASE=postgres PGSSLMODE=verify-full \
    PGSSLROOTCERT=$ROOT PGPASSWORD=$P
check "a note on stderr names what was dropped" \
    grep -q "note: the token is for $P, not for PGHOST=local.dsql.us-east-1.on.aws.*PGHOSTADDR, PGPORT, PGSSLROOTCERT" "$tmp/err"
inherited $T exec "postgresql://$P/postgres" -- sh "$tmp/printenv.sh" >"$tmp/child" 2>/dev/null
want_env "a URI host other than PGHOST: the same" \
    PGHOST=$P PGHOSTADDR=unset PGPORT=5432 PGUSER=admin PGDATABASE=postgres PGSSLMODE=verify-full \
    PGSSLROOTCERT=$ROOT PGPASSWORD=$P
inherited $T exec --hostname $P --hostaddr 10.1.2.3 --port 6000 -- sh "$tmp/printenv.sh" >"$tmp/child" 2>/dev/null
want_env "--hostaddr and --port are honoured" \
    PGHOST=$P PGHOSTADDR=10.1.2.3 PGPORT=6000 PGUSER=admin PGDATABASE=postgres PGSSLMODE=verify-full \
    PGSSLROOTCERT=$ROOT PGPASSWORD=$P
inherited $T exec "host=$P hostaddr=10.9.9.9 port=6001 user=app dbname=shop" --port 6002 -- sh "$tmp/printenv.sh" >"$tmp/child" 2>/dev/null
want_env "options > conninfo > environment" \
    PGHOST=$P PGHOSTADDR=10.9.9.9 PGPORT=6002 PGUSER=app PGDATABASE=shop PGSSLMODE=verify-full \
    PGSSLROOTCERT=$ROOT PGPASSWORD=$P
inherited $T exec -- sh "$tmp/printenv.sh" >"$tmp/child" 2>"$tmp/err"
want_env "no host given: PGHOST and what describes it, as libpq reads them" \
    PGHOST=local.dsql.us-east-1.on.aws PGHOSTADDR=127.0.0.1 PGPORT=7777 PGUSER=admin PGDATABASE=postgres \
    PGSSLMODE=verify-full PGSSLROOTCERT=/tmp/local-ca.pem PGPASSWORD=local.dsql.us-east-1.on.aws
check "no note when the host is PGHOST" test ! -s "$tmp/err"
inherited $T exec --hostname LOCAL.dsql.us-east-1.on.aws -- sh "$tmp/printenv.sh" >"$tmp/child" 2>/dev/null
want_env "--hostname equal to PGHOST (any case) keeps its hostaddr, port and CA" \
    PGHOST=LOCAL.dsql.us-east-1.on.aws PGHOSTADDR=127.0.0.1 PGPORT=7777 PGUSER=admin PGDATABASE=postgres \
    PGSSLMODE=verify-full PGSSLROOTCERT=/tmp/local-ca.pem PGPASSWORD=LOCAL.dsql.us-east-1.on.aws
env -u PGHOST -u PGHOSTADDR $T exec "host=localhost hostaddr=127.0.0.1 port=5433 signing_host=$P" -- sh "$tmp/printenv.sh" >"$tmp/child" 2>/dev/null
want_env "a tunnel: PGHOST is the host connected to, the token is for signing_host" \
    PGHOST=localhost PGHOSTADDR=127.0.0.1 PGPORT=5433 PGUSER=admin PGDATABASE=postgres \
    PGSSLMODE=verify-full PGSSLROOTCERT=$ROOT PGPASSWORD=$P
out=$(PGHOST=$P PGUSER=app $T --time 2024-11-07T17:39:33Z)
check "printing: no host given takes PGHOST and PGUSER" sh -c "echo '$out' | grep -q '^$P/?Action=DbConnect&'"
out=$(PGHOSTADDR=127.0.0.1 PGPORT=7777 $T exec --hostname $P -- sh -c 'echo "${PGHOSTADDR-unset} $PGPORT"' 2>"$tmp/err")
check "inherited PGHOSTADDR/PGPORT without PGHOST are dropped too" test "$out" = "unset 5432"
check "... with a note" grep -q "note: the token is for $P: the program gets PGHOST=$P and not the inherited PGHOSTADDR, PGPORT of" "$tmp/err"

# a service file beats the PG* variables in libpq: an inherited PGSERVICE
# would send the token to the service's host (here with sslmode=disable)
printf '[local]\nhost=127.0.0.1\nport=7777\nsslmode=disable\n' >"$tmp/pg_service.conf"
out=$(PGSERVICEFILE="$tmp/pg_service.conf" PGSERVICE=local $T exec --hostname $P -- sh -c 'echo "${PGSERVICE-unset}"' 2>"$tmp/err")
check "exec does not pass PGSERVICE on" test "$out" = unset
check "... and says so" grep -q "note: PGSERVICE=local is not passed on" "$tmp/err"
# the exact scenario: eval "$(dsql-local start)", then exec for another cluster
L=$B/dsql-local
if "$L" start --state-dir "$tmp/local" >"$tmp/local.env" 2>"$tmp/local.err"; then
    (
        eval "$(cat "$tmp/local.env")"
        LOCALHOST=$PGHOST
        $T exec --hostname $P -- sh "$tmp/printenv.sh" >"$tmp/child" 2>"$tmp/err"
        want_env "after eval \"\$(dsql-local start)\", exec --hostname other goes to other" \
            PGHOST=$P PGHOSTADDR=unset PGPORT=5432 PGUSER=admin PGDATABASE=postgres PGSSLMODE=verify-full \
            PGSSLROOTCERT=$ROOT PGPASSWORD=$P
        grep -q "not for PGHOST=$LOCALHOST" "$tmp/err" && echo "ok   ... with a note" || {
            echo "FAIL no note: $(cat "$tmp/err")"; fail=1; }
        out=$($T exec -- psql -Atc 'select current_user' 2>&1)
        [ "$out" = admin ] && echo "ok   after eval \"\$(dsql-local start)\", exec -- psql logs in" || {
            echo "FAIL exec -- psql: $out"; fail=1; }
        exit $fail
    ) || fail=1
    "$L" stop --state-dir "$tmp/local" >/dev/null 2>&1
else
    echo "FAIL dsql-local start: $(cat "$tmp/local.err")"; fail=1
fi
out=$("$L" run -- $T exec -- psql -Atc 'select 40 + 2' 2>&1)
check "dsql-local run -- dsql-token exec -- psql just works ($out)" test "$out" = 42

# ---- item 12: CLI polish ----
out=$($T --hostname https://$H/ --time 2024-11-07T17:39:33Z)
ref=$($T --hostname $H --time 2024-11-07T17:39:33Z)
check "--hostname https://H/ is H" test "$out" = "$ref"
expect_status 2 "--hostname '$H:5432' contains a port: give the host alone and use --port 5432" --hostname $H:5432
expect_status 2 "option --hostname needs a value" --hostname
expect_status 2 "option --hostname needs a value" --hostname --user x
expect_status 2 "option --port needs a value" exec --hostname $H --port -- true
expect_status 2 "--port '70000' is not a number in 1..65535" --hostname $H --port 70000
printf '[default]\nregion = us-east-1\naws_access_key_id = AKIDLOOSE\naws_secret_access_key = loose-secret\n' >"$tmp/creds"
chmod 644 "$tmp/creds"
for v in "" --verbose; do
    n=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
        AWS_SHARED_CREDENTIALS_FILE="$tmp/creds" AWS_CONFIG_FILE="$tmp/creds" \
        $T $v --hostname localhost 2>&1 >/dev/null | grep -c "accessible to group or others")
    check "the file-permission warning is printed once ${v:-(default)} ($n)" test "$n" -eq 1
done
# exec that cannot run the program: exit 127, token and config freed
if nm "$T" 2>/dev/null | grep -q __asan_init; then
    $T exec --hostname $H -- "$tmp/no-such-program" 2>"$tmp/err" # LeakSanitizer fails the exit
    st=$?
    check "exec of a missing program: 127, nothing leaked (ASan) ($st)" test "$st" -eq 127
elif command -v valgrind >/dev/null; then
    valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
        $T exec --hostname $H -- "$tmp/no-such-program" 2>"$tmp/err"
    st=$?
    check "exec of a missing program: 127, nothing leaked (valgrind) ($st)" test "$st" -eq 127
    [ "$st" -eq 127 ] || cat "$tmp/err"
else
    echo "FAIL neither an ASan build nor valgrind to check exec's cleanup"; fail=1
fi
check "exec of a missing program says so" grep -q "cannot run '$tmp/no-such-program'" "$tmp/err"

exit $fail

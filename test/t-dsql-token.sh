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
expect_status 2 "give exactly one of --hostname, --cluster-id or a connection"
expect_status 2 "give exactly one of" --hostname a --cluster-id b
expect_status 2 "unknown option '--nope'" --nope
expect_status 2 "--expires-in '0' is not" --hostname h --expires-in 0
expect_status 2 "--expires-in '604801' is not" --hostname h --expires-in 604801
expect_status 2 "--time 'yesterday' is not" --hostname h --time yesterday
expect_status 2 "unexpected argument 'more'" a.dsql.us-east-1.on.aws more
expect_status 2 "give exactly one of" --hostname h extra
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

out=$(PGUSER= PGHOST= PGSSLMODE=require $T exec --hostname c.dsql.us-east-1.on.aws --user app -- sh -c 'echo "$PGHOST $PGUSER $PGDATABASE $PGSSLMODE ${PGPASSWORD%%/*}"')
check "exec sets PG variables, keeps the user's" test "$out" = "c.dsql.us-east-1.on.aws app postgres require c.dsql.us-east-1.on.aws"
$T exec --hostname c.dsql.us-east-1.on.aws -- sh -c 'exit 7'
check "exec returns the program's status" test $? -eq 7
out=$(env -u PGPORT -u PGDATABASE -u PGHOST -u PGHOSTADDR $T exec "host=c.dsql.us-east-1.on.aws hostaddr=127.0.0.1 port=6543 dbname=shop" -- sh -c 'echo "$PGHOST $PGHOSTADDR $PGPORT $PGDATABASE"')
check "exec with a conninfo sets host, hostaddr, port, dbname" test "$out" = "c.dsql.us-east-1.on.aws 127.0.0.1 6543 shop"

exit $fail

#!/bin/sh
# examples/token.c and examples/custom-provider.c, run under dsql-local:
# the token example's output logs in with psql (when installed) and has the
# token's shape; the custom provider connects with keys read from a file
# (and not from the environment), and a wrong key in the file is refused.
set -u
B=${B:-build}
for p in "$B/dsql-local" "$B/examples/token" "$B/examples/custom-provider"; do
    [ -x "$p" ] || { echo "FAIL $p is missing (make check builds it)"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export B tmp

# shellcheck disable=SC2016
"$B/dsql-local" run -- sh -c '
fail=0
# examples/token: default chain (here the environment keys dsql-local set)
if tok=$("$B/examples/token" 2>&1); then
    case "$tok" in
        "$PGHOST/?Action=DbConnectAdmin&"*X-Amz-Signature=*) echo "ok   examples/token prints a DbConnectAdmin token for $PGHOST" ;;
        *) echo "FAIL examples/token output: $tok"; fail=1 ;;
    esac
    if command -v psql >/dev/null 2>&1; then
        if out=$(PGPASSWORD=$tok psql -X -At -c "select current_user" 2>&1) && [ "$out" = admin ]; then
            echo "ok   psql logs in with the token from examples/token"
        else
            echo "FAIL psql with the token from examples/token: $out"; fail=1
        fi
    fi
else
    echo "FAIL examples/token: $tok"; fail=1
fi
if tok=$("$B/examples/token" "$PGHOST" someone 60 2>&1) &&
    case "$tok" in *"Action=DbConnect&"*"X-Amz-Expires=60&"*) true ;; *) false ;; esac; then
    echo "ok   examples/token HOST USER SECONDS: DbConnect, X-Amz-Expires=60"
else
    echo "FAIL examples/token HOST USER SECONDS: $tok"; fail=1
fi
if out=$(env -u PGHOST "$B/examples/token" 2>&1); [ $? -eq 2 ]; then
    echo "ok   examples/token without a host prints usage"
else
    echo "FAIL examples/token without a host: $out"; fail=1
fi

# examples/custom-provider: keys from a file, the environment keys removed
keys=$tmp/keys
{
    echo "# keys for the custom provider example"
    echo "aws_access_key_id = $AWS_ACCESS_KEY_ID"
    echo "aws_secret_access_key = $AWS_SECRET_ACCESS_KEY"
} >"$keys"
run_custom() {
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
        AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
        "$B/examples/custom-provider" "$@" 2>&1
}
if out=$(run_custom "$keys") && echo "$out" | grep -q "connected as admin with keys from $keys"; then
    echo "ok   examples/custom-provider: $out"
else
    echo "FAIL examples/custom-provider: $out"; fail=1
fi
if out=$(run_custom "$keys" "user=admin host=$PGHOST hostaddr=$PGHOSTADDR port=$PGPORT") &&
    echo "$out" | grep -q "connected as admin"; then
    echo "ok   examples/custom-provider with a conninfo argument"
else
    echo "FAIL examples/custom-provider with a conninfo argument: $out"; fail=1
fi
sed "s|^aws_secret_access_key = .*|aws_secret_access_key = not-the-secret|" "$keys" >"$tmp/bad"
if out=$(run_custom "$tmp/bad"); then
    echo "FAIL examples/custom-provider logged in with a wrong secret: $out"; fail=1
elif echo "$out" | grep -q "IAM authentication failed"; then
    echo "ok   wrong secret in the keys file: refused (IAM authentication failed)"
else
    echo "FAIL wrong secret in the keys file: unexpected error: $out"; fail=1
fi
grep -v aws_secret_access_key "$keys" >"$tmp/nosecret"
if out=$(run_custom "$tmp/nosecret"); [ $? -ne 0 ] &&
    echo "$out" | grep -q "needs aws_secret_access_key"; then
    echo "ok   keys file without a secret: the provider says so before connecting"
else
    echo "FAIL keys file without a secret: $out"; fail=1
fi
if out=$(run_custom "$tmp/absent"); [ $? -ne 0 ] && echo "$out" | grep -q "No such file"; then
    echo "ok   missing keys file: $out"
else
    echo "FAIL missing keys file: $out"; fail=1
fi
exit $fail
'

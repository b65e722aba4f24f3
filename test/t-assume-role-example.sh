#!/bin/sh
# examples/assume-role.c against dsql-local and the loopback STS double
# (test/aws_test_server.py, which checks AssumeRole's SigV4 signature
# against the source keys): dsql-local knows only the assumed role's key,
# so the login works only with the credentials STS handed out; the source
# keys alone are refused.
set -u
B=${B:-build}
for p in "$B/dsql-local" "$B/examples/assume-role" "$B/examples/connect"; do
    [ -x "$p" ] || { echo "FAIL $p is missing (make check builds it)"; exit 1; }
done
tmp=$(mktemp -d)
srv_pid=
cleanup() { [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
# the STS double's defaults: signed by AKIDSOURCE, hands out ASIATESTACCESSKEY
printf '%s\n' "ASIATESTACCESSKEY test/secret+access/key test-session-token" >"$tmp/keys"
python3 test/aws_test_server.py --host 127.0.0.1 --port 0 >"$tmp/port" &
srv_pid=$!
# up to 30 s: Python starts slowly on a loaded machine
for _ in $(seq 300); do grep -q '^PORT' "$tmp/port" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^PORT \([0-9]*\).*/\1/p' "$tmp/port")
[ -n "$port" ] || { echo "FAIL the STS double did not start"; exit 1; }
export B port
# shellcheck disable=SC2016
"$B/dsql-local" run --keys "$tmp/keys" -- sh -c '
fail=0
export AWS_ACCESS_KEY_ID=AKIDSOURCE AWS_SECRET_ACCESS_KEY=source-secret
unset AWS_SESSION_TOKEN AWS_PROFILE
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_ENDPOINT_URL_STS=http://127.0.0.1:$port AWS_EC2_METADATA_DISABLED=true
role=arn:aws:iam::123456789012:role/dsql-example
if out=$("$B/examples/assume-role" "$role" 2>&1) &&
    [ "$out" = "connected as admin with the credentials of $role" ]; then
    echo "ok   examples/assume-role: $out"
else
    echo "FAIL examples/assume-role: $out"; fail=1
fi
if out=$("$B/examples/connect" 2>&1); then
    echo "FAIL the source keys alone logged in: $out"; fail=1
else
    echo "ok   the source keys alone are refused (only the role key is known)"
fi
exit $fail
'

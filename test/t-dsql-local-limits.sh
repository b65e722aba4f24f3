#!/bin/sh
# dsql-local's connection and transaction limits ("Cluster quotas and
# database limits in Amazon Aurora DSQL"), set low so tests reach them:
# sessions (53300), new sessions a second (53400), transaction duration.
. "$(dirname "$0")/dsql-local-lib.sh"
need_pg15 psql
make_tmp
stop_on_exit a b
start_local a --max-connections 2 --max-transaction-duration 2 &
a=$!
start_local b --connection-rate 1/s --burst 3 &
b=$!
wait $a || exit 1
wait $b || exit 1

out=$("$L" start --connection-rate fast 2>&1; echo "st=$?")
case $out in *"--connection-rate 'fast'"*st=2) pass "a bad rate is a usage error" ;; *) bad "bad rate: $out" ;; esac
out=$("$L" start --burst 5 2>&1; echo "st=$?")
case $out in *"--burst needs --connection-rate"*st=2) pass "--burst alone is a usage error" ;; *) bad "burst: $out" ;; esac

(
    use_local a
    # two sessions that stay until told to go: logged in once their file
    # is there (a fixed sleep could end before a loaded machine logs in)
    for s in 1 2; do
        printf '\\! touch %s/in%s\n\\! %s\n' "$tmp" $s \
            "i=0; while [ ! -e $tmp/go ] && [ \$i -lt 600 ]; do sleep 0.05; i=\$((i+1)); done" |
            psql -X -q >/dev/null 2>&1 &
    done
    until_file in1
    until_file in2
    out=$(psql -X -At -c "select 1" 2>&1)
    case $out in *"Unable to accept connection, too many open connections."*)
        pass "--max-connections 2: the third session is refused with DSQL's 53300 text" ;;
    *) bad "third session: $out" ;; esac
    touch "$tmp/go"
    wait
    out=$(psql -X -At -c "select 1" 2>&1)
    [ "$out" = 1 ] && pass "sessions that ended make room again" || bad "after the two ended: $out"

    out=$(psql -X -At -c "begin" -c "select pg_sleep(5)" 2>&1)
    case $out in *"transaction exceeded the maximum duration of 2 s"*)
        pass "--max-transaction-duration 2: a longer transaction ends the session" ;;
    *) bad "long transaction: $out" ;; esac
    out=$(psql -X -At -c "begin" -c "select 1" -c "commit" -c "select pg_sleep(3)" -c "select 42" 2>&1)
    case $out in *42) pass "time outside a transaction does not count" ;; *) bad "idle session: $out" ;; esac
    exit $fail
) || fail=1

(
    use_local b
    sleep 3 # a full bucket
    start=$(date +%s)
    i=0
    while [ $i -lt 20 ]; do
        psql -X -At -c "select 1" >"$tmp/rate.$i" 2>&1 &
        i=$((i + 1))
    done
    wait
    el=$(($(date +%s) - start))
    okc=$(cat "$tmp"/rate.* | grep -c '^1$')
    refused=$(cat "$tmp"/rate.* | grep -c "Unable to accept connection, rate exceeded.")
    # at most the burst plus one a second got in; every other one was told why
    if [ "$okc" -le $((3 + el + 1)) ] && [ $((okc + refused)) -eq 20 ] && [ "$refused" -gt 0 ]; then
        pass "--connection-rate 1/s --burst 3: $okc of 20 in ${el}s, $refused refused with DSQL's 53400 text"
    else
        bad "rate: $okc ok, $refused refused of 20 in ${el}s: $(cat "$tmp"/rate.* | sort | uniq -c)"
    fi
    sleep 2
    out=$(psql -X -At -c "select 1" 2>&1)
    [ "$out" = 1 ] && pass "after a pause logins work again" || bad "after the pause: $out"
    exit $fail
) || fail=1

[ $fail -eq 0 ] && echo "all dsql-local limit checks passed"
exit $fail

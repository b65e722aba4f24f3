#!/bin/sh
# A transfer workload through the pool and dsql_pq_pool_run_transaction
# against injected faults (issue 17): 30% of write commits conflict (OC000)
# and 5% are applied and then cut off. The balances must add up, every
# ambiguous commit must be reported (as many as the gateway cut) and no
# transfer applied twice (test/fault_transfers.c checks the data).
. "$(dirname "$0")/dsql-local-lib.sh"
need_pg15
if [ ! -x "$B/test/fault_transfers" ]; then
    echo "FAIL $B/test/fault_transfers is missing (make check builds it)"
    exit 1
fi
make_tmp
stop_on_exit w
start_local w
. "$tmp/w.env"
"$B/test/fault_transfers" setup >"$tmp/setup.out" 2>&1 || bad "setup: $(cat "$tmp/setup.out")"
"$L" set conflict-rate 0.3 && "$L" set drop-after-commit 0.05 || bad "dsql-local set"
"$B/test/fault_transfers" run "'$L' set conflict-rate 0 && '$L' set drop-after-commit 0" \
    >"$tmp/run.out" 2>&1 || fail=1
cat "$tmp/run.out"
reported=$(sed -n 's/^ambiguous commits reported: //p' "$tmp/run.out")
cut=$(grep -c 'connection cut (drop-after-commit)' "$tmp/w/dsql-local.log")
retried=$(sed -n 's/^attempts retried after conflicts or broken connections: //p' "$tmp/run.out")
[ -n "$reported" ] && [ "$reported" = "$cut" ] &&
    pass "every ambiguous commit reported: $reported reported, $cut cut by the gateway" ||
    bad "ambiguous commits: $reported reported, $cut cut by the gateway"
[ "${retried:-0}" -gt 0 ] && pass "injected conflicts were retried ($retried attempts)" ||
    bad "no retries at conflict-rate 0.3: ${retried:-none}"
[ $fail -eq 0 ] && echo "all fault-workload checks passed"
exit $fail

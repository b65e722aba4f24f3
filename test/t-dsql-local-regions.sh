#!/bin/sh
# dsql-local --regions: a multi-Region cluster pair, one front door per
# region over the same database; each accepts only tokens signed for its
# own name and region, as each regional DSQL endpoint does.
. "$(dirname "$0")/dsql-local-lib.sh"
need_pg15 psql
make_tmp
stop_on_exit m
out=$("$L" start --regions "us-east-1,bad/region" 2>&1; echo "st=$?")
case $out in *"--regions"*st=2) pass "a bad region list is a usage error" ;; *) bad "bad regions: $out" ;; esac
start_local m --regions us-east-1,us-east-2
. "$tmp/m.env"
h1=${DSQL_LOCAL_HOSTS%%,*}; h2=${DSQL_LOCAL_HOSTS#*,}
p1=${DSQL_LOCAL_PORTS%%,*}; p2=${DSQL_LOCAL_PORTS#*,}
case "$h1 $h2" in *.dsql.us-east-1.on.aws*.dsql.us-east-2.on.aws)
    [ "$h1" = "$PGHOST" ] && [ "$p1" = "$PGPORT" ] && [ "$p1" != "$p2" ] &&
        pass "two endpoints: $h1:$p1 and $h2:$p2" || bad "endpoints: $DSQL_LOCAL_HOSTS $DSQL_LOCAL_PORTS" ;;
*) bad "endpoints: ${DSQL_LOCAL_HOSTS:-none}" ;; esac
PGPASSWORD=$("$T" --hostname "$h1") psql -X -q -c "CREATE TABLE shared (x int PRIMARY KEY)" ||
    bad "create in region 1"
out=$(PGHOST=$h2 PGPORT=$p2 PGPASSWORD=$("$T" --hostname "$h2") psql -X -At \
    -c "INSERT INTO shared VALUES (2)" -c "SELECT count(*) FROM shared" -c "SHOW port" 2>&1)
case $out in *1*) pass "region 2 logs in with its own token and sees region 1's table" ;;
*) bad "region 2: $out" ;; esac
out=$(PGHOST=$h2 PGPORT=$p2 PGPASSWORD=$("$T" --hostname "$h2" --region us-east-1) psql -X -At \
    -c "select 1" 2>&1)
case $out in *"scoped to a valid region"*|*"IAM authentication failed"*)
    pass "region 2 refuses a token signed for region 1" ;;
*) bad "wrong-region token on region 2: $out" ;; esac
out=$(PGPASSWORD=$("$T" --hostname "$h2") PGPORT=$p1 PGHOST=$h2 psql -X -At -c "select 1" 2>&1)
case $out in *"no cluster is named"*|*"IAM authentication failed"*)
    pass "region 1's endpoint refuses region 2's name" ;;
*) bad "region 2 name on region 1: $out" ;; esac
"$L" set conflict-rate 1 --state-dir "$tmp/m" || bad "set"
out=$(PGHOST=$h2 PGPORT=$p2 PGPASSWORD=$("$T" --hostname "$h2") psql -X -At -c "INSERT INTO shared VALUES (3)" 2>&1)
case $out in *"(OC000)"*) pass "set applies to every region's gateway" ;; *) bad "set on region 2: $out" ;; esac
[ $fail -eq 0 ] && echo "all dsql-local region checks passed"
exit $fail

#!/bin/sh
# dsql-local's state directory against a hostile local user (issue 13,
# item 1): a directory someone else owns or can write, a symbolic link as
# the directory or named like a state file, a leftover readable
# server.key, and a pid file naming a process that is not the server.
# Loopback only; the cases for another user's files need root (chown).
. "$(dirname "$0")/dsql-local-lib.sh"
need_pg15
unset DSQL_LOCAL_STATE_DIR
umask 022
make_tmp
me=$(id -u)
root=0; [ "$me" -eq 0 ] && root=1
nobody=$(id -u nobody 2>/dev/null || echo 65534)
started=""  # every state dir a start was tried on (an unfixed build starts there)
sleeper=""
cleanup() {
    for d in $started; do
        [ -e "$d/dsql-local.pid" ] && timeout 20 "$L" stop --state-dir "$d" >/dev/null 2>&1
    done
    [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# refused DESCRIPTION DIR FRAGMENT: `start --state-dir DIR` fails naming the problem
refused() {
    started="$started $2"
    out=$(timeout 60 "$L" start --state-dir "$2" 2>&1); st=$?
    if [ $st -eq 1 ] && echo "$out" | grep -qF -- "$3"; then
        pass "$1: $(echo "$out" | head -1)"
    else
        bad "$1: status $st, wanted '$3', got: $(echo "$out" | head -2)"
    fi
}
empty() { [ -z "$(ls -A "$1")" ]; }
victim() { printf 'precious %s\n' "$1" >"$tmp/victim-$1"; chmod 644 "$tmp/victim-$1"; }
intact() { [ "$(cat "$tmp/victim-$1" 2>/dev/null)" = "precious $1" ]; }
# what became of a victim, without printing what was written into it
fate() { [ -e "$tmp/victim-$1" ] && echo "now $(wc -c <"$tmp/victim-$1") bytes" || echo "gone"; }

# ---- directories we must not use ----
mkdir "$tmp/open"
chmod 777 "$tmp/open"
refused "a state directory writable by others (0777)" "$tmp/open" "is writable by group or others (mode 0777)"
empty "$tmp/open" && pass "nothing was written into the 0777 directory" || bad "0777 dir holds: $(ls -A "$tmp/open")"

mkdir "$tmp/real"
chmod 700 "$tmp/real"
ln -s "$tmp/real" "$tmp/link"
refused "a symbolic link as the state directory" "$tmp/link" "is a symbolic link"
empty "$tmp/real" && pass "nothing was written through the link" || bad "link target holds: $(ls -A "$tmp/real")"
out=$("$L" stop --state-dir "$tmp/link" 2>&1); st=$?
[ $st -eq 1 ] && echo "$out" | grep -q "is a symbolic link" && pass "stop refuses the link too" ||
    bad "stop through a link: $st $out"

mkdir "$tmp/shared"
chmod 777 "$tmp/shared"
refused "a state directory inside a directory others can write (not sticky)" "$tmp/shared/state" \
    "is writable by group or others and not sticky"
[ ! -e "$tmp/shared/state" ] && pass "it was not created" || bad "$tmp/shared/state was created"

if [ $root -eq 1 ]; then
    # what the issue's attacker does: the predictable default name, made
    # first, 0777, with a link named like the key table and a readable key
    mkdir -m 1777 "$tmp/td"
    trapdir=$tmp/td/dsql-local-$me
    mkdir "$trapdir"
    victim attack
    ln -s "$tmp/victim-attack" "$trapdir/keys"
    : >"$trapdir/server.key"
    chmod 644 "$trapdir/server.key"
    chown -h nobody "$trapdir" "$trapdir/keys" "$trapdir/server.key"
    chmod 777 "$trapdir"
    started="$started $trapdir"
    out=$(TMPDIR=$tmp/td timeout 60 "$L" start 2>&1); st=$?
    [ $st -eq 1 ] && echo "$out" | grep -qF "belongs to uid $nobody, not to you" &&
        pass "a default state directory made by another user: $out" ||
        bad "another user's default directory: status $st: $(echo "$out" | head -2)"
    intact attack && [ ! -s "$trapdir/server.key" ] &&
        pass "the victim of its planted link and its server.key are untouched" ||
        bad "victim $(fate attack), server.key: $(wc -c <"$trapdir/server.key") bytes"

    mkdir "$tmp/theirs"
    chown nobody "$tmp/theirs"
    chmod 700 "$tmp/theirs"
    refused "a private state directory owned by nobody" "$tmp/theirs" "belongs to uid $nobody, not to you"
else
    echo "skip: another user's directory (needs root for chown)"
fi

# ---- state files: never followed, never overwritten ----
for name in keys ca.pem server.pem server.key dsql-local.log postgres.log dsql-local.pid dsql-local.lock; do
    d=$tmp/own-$name
    mkdir "$d"
    chmod 700 "$d"
    victim "$name"
    ln -s "$tmp/victim-$name" "$d/$name"
    refused "a planted link named $name" "$d" "$d/$name"
    intact "$name" && pass "its target is untouched" || bad "victim of $name: $(fate "$name")"
done

# a server killed outright leaves its state; the next start removes it
# (a link planted there is removed, not followed) and makes new files
k=$tmp/k
started="$started $k"
if timeout 60 "$L" start --state-dir "$k" >"$tmp/k1.env" 2>"$tmp/k1.err"; then
    kill -KILL "$(head -1 "$k/dsql-local.pid")"
    # PostgreSQL follows its parent (parent-death signal), in its own time
    until_true eval '! ps -eo args | grep -v grep | grep -qF "$k/pg"'
    victim k
    rm -f "$k/keys"
    ln -s "$tmp/victim-k" "$k/keys"
    chmod 644 "$k/server.key"
    if timeout 60 "$L" start --state-dir "$k" >"$tmp/k2.env" 2>"$tmp/k2.err"; then
        pass "start after a killed server reuses its directory"
    else
        bad "second start: $(cat "$tmp/k2.err")"
    fi
    intact k && pass "a link left as keys: its target is untouched" || bad "victim k: $(fate k)"
    modes=$(stat -c '%F %a %u' "$k/server.key" "$k/keys" 2>&1 | tr '\n' ';')
    [ "$modes" = "regular file 600 $me;regular file 600 $me;" ] &&
        pass "server.key and keys are new 0600 files ($modes)" || bad "server.key, keys: $modes"
    if [ $root -eq 1 ]; then
        runuser -u nobody -- cat "$k/server.key" >/dev/null 2>&1 && bad "nobody can read server.key" ||
            pass "another user cannot read server.key"
    fi
else
    bad "start in $k: $(cat "$tmp/k1.err")"
fi

# under umask 000 nothing is left writable by others; secrets stay 0600
mkdir "$tmp/u"
out=$(umask 000; TMPDIR=$tmp/u timeout 120 "$L" run -- sh -c '
    d=$DSQL_LOCAL_STATE_DIR
    stat -c "%a %n" "$d" "$d"/* | sed "s|$d|D|"
    runuser -u nobody -- cat "$d/server.key" >/dev/null 2>&1 && echo "nobody can read server.key"
    exit 0' 2>&1)
loose=$(echo "$out" | awk '$1 ~ /[2367].$|[2367]$/ || ($2 ~ /server.key|keys|log$/ && $1 != 600)')
echo "$out" | grep -q "D/server.key" && [ -z "$loose" ] &&
    pass "umask 000: no group/world-writable state, secrets and logs 0600 ($(echo "$out" | tr '\n' ' '))" ||
    bad "umask 000: $(echo "$out" | tr '\n' ' ')"

# ---- stop signals only the server of that directory ----
mkdir "$tmp/fake"
chmod 700 "$tmp/fake"
sleep 300 &
sleeper=$!
echo "$sleeper" >"$tmp/fake/dsql-local.pid"
out=$("$L" stop --state-dir "$tmp/fake" 2>&1); st=$?
# a signal sent takes effect when the target next runs: give it 1 s
holds_for 1 alive "$sleeper" && [ $st -eq 1 ] && echo "$out" | grep -q "is not the dsql-local server" &&
    pass "stop leaves a process named in a forged pid file alone: $out" ||
    bad "forged pid file: status $st, sleep $(alive "$sleeper" && echo alive || echo killed): $out"
if [ -s "$k/dsql-local.pid" ]; then
    # the pid of a real dsql-local, but of another state directory
    server=$(head -1 "$k/dsql-local.pid")
    mkdir "$tmp/fake2"
    chmod 700 "$tmp/fake2"
    echo "$server" >"$tmp/fake2/dsql-local.pid"
    : >"$tmp/fake2/dsql-local.lock"
    out=$("$L" stop --state-dir "$tmp/fake2" 2>&1); st=$?
    holds_for 1 alive "$server" && [ $st -eq 1 ] && echo "$out" | grep -q "is not the dsql-local server" &&
        pass "stop leaves the dsql-local of another directory alone" ||
        bad "another directory's server: status $st: $out"
    "$L" stop --state-dir "$k" && [ ! -e "$k" ] && ! alive "$server" &&
        pass "stop of its own directory stops it and removes the directory" || bad "stop $k: $(ls -A "$k" 2>&1)"
fi
if [ $root -eq 1 ]; then
    mkdir "$tmp/theirs-stop"
    echo "$sleeper" >"$tmp/theirs-stop/dsql-local.pid"
    chown -R nobody "$tmp/theirs-stop"
    out=$("$L" stop --state-dir "$tmp/theirs-stop" 2>&1); st=$?
    holds_for 1 alive "$sleeper" && [ $st -eq 1 ] && echo "$out" | grep -q "belongs to uid $nobody" &&
        pass "stop refuses another user's directory: $out" || bad "stop in nobody's dir: $st $out"
fi

# ---- the default directory: eval "$(dsql-local start)"; ...; dsql-local stop ----
mkdir -m 1777 "$tmp/td2"
chmod 1777 "$tmp/td2"
def=$tmp/td2/dsql-local-$me
started="$started $def"
(
    export TMPDIR="$tmp/td2"
    out=$(timeout 60 "$L" start 2>&1) || { echo "FAIL default start: $out"; exit 1; }
    eval "$out"
    [ "$DSQL_LOCAL_STATE_DIR" = "$def" ] && [ -n "$(stat -c %a "$def" | grep -E '^7[01][01]$')" ] &&
        echo "ok   start made the private default directory ($(stat -c %a "$def"))" ||
        { echo "FAIL default directory: $DSQL_LOCAL_STATE_DIR, mode $(stat -c %a "$def")"; exit 1; }
    out=$(timeout 60 "$L" start 2>&1); st=$?
    [ $st -eq 1 ] && echo "$out" | grep -q "already running in $def" &&
        echo "ok   a second start there is refused" || { echo "FAIL second start: $st $out"; exit 1; }
    unset DSQL_LOCAL_STATE_DIR
    "$L" stop && [ ! -e "$def" ] && echo "ok   stop (no options) stops it and removes the directory" ||
        { echo "FAIL default stop left: $(ls -A "$def" 2>&1)"; exit 1; }
) || fail=1

[ $fail -eq 0 ] && echo "all state directory checks passed"
exit $fail

#!/bin/sh
# Login latency through the dsql-local gateway (TLS + IAM token check +
# relay to PostgreSQL over a Unix socket) against a direct TLS login to
# PostgreSQL with a static password (cleartext-over-TLS and SCRAM).
# Everything on 127.0.0.1. Usage: B=build N=300 THREADS=1 sh bench/gateway-bench.sh
set -eu
B=${B:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
N=${N:-300}
THREADS=${THREADS:-1}
PGBIN=/usr/lib/postgresql/15/bin
tmp=$(mktemp -d)
chmod 755 "$tmp"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    [ -f "$tmp/pg/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$tmp/pg/data" -m immediate stop >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# direct: a TLS PostgreSQL on 127.0.0.1 with password logins
mkdir "$tmp/pg"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -keyout "$tmp/pg/server.key" -out "$tmp/pg/server.crt" -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost >/dev/null 2>&1
chmod 600 "$tmp/pg/server.key"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$tmp/pg"
as_pg "$PGBIN/initdb" -D "$tmp/pg/data" -U admin -A trust --no-sync --no-instructions >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >>"$tmp/pg/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$tmp/pg'
ssl = on
ssl_cert_file = '$tmp/pg/server.crt'
ssl_key_file = '$tmp/pg/server.key'
fsync = off
password_encryption = 'scram-sha-256'
CONF
cat >"$tmp/pg/data/pg_hba.conf" <<HBA
local all all trust
hostssl all plain 127.0.0.1/32 password
hostssl all all 127.0.0.1/32 scram-sha-256
HBA
as_pg "$PGBIN/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/log" -w start >/dev/null
psql -X -q -h "$tmp/pg" -p "$PORT" -U admin -d postgres \
    -c "alter role admin password 'benchpw'" -c "create role plain login password 'benchpw'"

direct() { # user
    env PGHOST=localhost PGHOSTADDR=127.0.0.1 PGPORT="$PORT" PGSSLMODE=verify-full \
        PGSSLROOTCERT="$tmp/pg/server.crt" PGUSER="$1" PGPASSWORD=benchpw PGDATABASE=postgres \
        "$B/bench/gateway-bench" --threads "$THREADS" --count "$N"
}
mean() { sed -E 's/.*mean=([0-9.]+)ms.*/\1/'; }

echo "== $N sequential logins each (threads=$THREADS), TLS 1.3, P-256"
d_plain=$(direct plain); echo "direct TLS, password auth:      $d_plain"
d_scram=$(direct admin); echo "direct TLS, SCRAM-SHA-256:      $d_scram"
gw=$("$B/dsql-local" run -- "$B/bench/gateway-bench" --token --threads "$THREADS" --count "$N")
echo "dsql-local gateway, IAM token:  $gw"
awk -v g="$(echo "$gw" | mean)" -v p="$(echo "$d_plain" | mean)" -v s="$(echo "$d_scram" | mean)" \
    'BEGIN { printf "ratio gateway/direct-password = %.2f, gateway/direct-scram = %.2f\n", g / p, g / s }'

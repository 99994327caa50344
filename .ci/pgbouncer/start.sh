#!/usr/bin/env bash
# Starts PgBouncer on 127.0.0.1:6432 in transaction pooling mode in front of
# the PostgreSQL at 127.0.0.1:5432 (config: pgbouncer.ini beside this file).
# Idempotent. Exits non-zero when PgBouncer cannot be installed or started.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir=/tmp/spywatcher-pgbouncer

if pg_isready -h 127.0.0.1 -p 6432 -q 2>/dev/null; then
  echo "PgBouncer already up on 127.0.0.1:6432"
  exit 0
fi
PATH="$PATH:/usr/sbin"
if ! command -v pgbouncer >/dev/null; then
  apt-get install -y -qq pgbouncer >/dev/null || { apt-get update -qq && apt-get install -y -qq pgbouncer >/dev/null; }
fi
mkdir -p "$dir"
cp "$here/pgbouncer.ini" "$dir/pgbouncer.ini"
echo '"postgres" ""' >"$dir/userlist.txt"
user_flag=()
if [ "$(id -u)" = 0 ]; then
  # PgBouncer refuses to run as root.
  chown -R postgres "$dir"
  user_flag=(-u postgres)
fi
pgbouncer -d "${user_flag[@]}" "$dir/pgbouncer.ini"
for _ in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -p 6432 -q && break
  sleep 0.2
done
pg_isready -h 127.0.0.1 -p 6432

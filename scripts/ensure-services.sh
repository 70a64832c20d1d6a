#!/usr/bin/env bash
# Make sure Postgres and Redis answer at the given URLs; start them if they are local and down.
# Order of preference: they already answer; `docker compose up -d postgres redis`; the local
# server binaries. If none works, say exactly what to install.
set -euo pipefail
db_url=${1:?database url}
redis_url=${2:?redis url}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
py="$root/.venv/bin/python"
probe() { "$py" "$here/probe.py" "$db_url" "$redis_url"; }

down=$(probe) || true
[ -z "$down" ] && exit 0
echo "not answering: $down"

if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1 \
    && docker info >/dev/null 2>&1; then
  echo "starting with docker compose: postgres redis"
  (cd "$root" && docker compose up -d --wait postgres redis)
else
  for svc in $down; do
    case $svc in
      postgres)
        if command -v pg_ctlcluster >/dev/null 2>&1 && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
          version=$(ls /etc/postgresql | sort -V | tail -n 1)
          echo "starting local PostgreSQL $version"
          pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        fi
        ;;
      redis)
        if command -v redis-server >/dev/null 2>&1; then
          port=$("$py" -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).port or 6379)' "$redis_url")
          dir=/var/lib/redis; logdir=/var/log/redis
          if [ ! -w "$dir" ] || [ ! -w "$logdir" ]; then
            dir="$root/.make/redis"; logdir="$dir"; mkdir -p "$dir"
          fi
          echo "starting local redis-server on port $port"
          redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" --save "" \
            --appendonly no --dir "$dir" --logfile "$logdir/ci.log"
        fi
        ;;
    esac
  done
fi

for _ in $(seq 1 60); do
  down=$(probe) || true
  [ -z "$down" ] && { echo "postgres and redis answer"; exit 0; }
  sleep 0.5
done

cat >&2 <<MSG
Still not answering: $down
Copytrade needs PostgreSQL (14+) and Redis (6.2+). Either:
  - install Docker with the compose plugin; 'make run' then starts both from docker-compose.yml, or
  - install the servers locally, e.g. on Debian/Ubuntu: sudo apt-get install postgresql redis-server
    (trust or password auth for the user in COPYTRADE_DATABASE_URL), or
  - point COPYTRADE_DATABASE_URL and COPYTRADE_REDIS_URL at servers you already run.
MSG
exit 1

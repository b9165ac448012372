#!/usr/bin/env bash
# `make run`: services, migrations, seed, then web + worker (Procfile, via honcho).
# Ctrl-C / SIGTERM stops the processes it started, including the project-local
# PostgreSQL/Redis/ClickHouse/Kafka (Tansu) instances that scripts/services.py
# started for this run. The sinks come in through CLICKHOUSE_URL and
# KAFKA_BOOTSTRAP_SERVERS in .local/services.env (empty = disabled, CC_SINKS=0).
set -euo pipefail
cd "$(dirname "$0")/.."
export PORT="${PORT:-8000}"
# one gevent web process per core (at most 4) unless told otherwise
cores=$(nproc 2>/dev/null || echo 1)
export CC_WEB_PROCESSES="${CC_WEB_PROCESSES:-$(( cores > 4 ? 4 : cores ))}"
# connection budget (README): the web processes share about 16 pooled connections of
# each kind, so make run stays near 50 PostgreSQL connections at any core count
pool=$(( 16 / CC_WEB_PROCESSES ))
export CC_DB_POOL_SIZE="${CC_DB_POOL_SIZE:-$(( pool < 2 ? 2 : pool ))}"
# web and worker share this machine: background consumption yields the CPU to players
export CC_WORKER_NICE="${CC_WORKER_NICE:-10}"
t0=$(date +%s)

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "run: port $PORT is already in use; set PORT=... to use another" >&2
  exit 1
fi

python3 scripts/services.py up
set -a
# shellcheck disable=SC1091
. .local/services.env
set +a
if [[ "$DATABASE_URL" == */postgres ]]; then
  export DATABASE_URL="${DATABASE_URL%/postgres}/${CC_DB_NAME:-casino}"
fi

.venv/bin/python -m ccweb.manage setup

honcho_pid=""
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$honcho_pid" ] && kill -0 "$honcho_pid" 2>/dev/null; then
    kill -TERM "$honcho_pid" 2>/dev/null || true
    wait "$honcho_pid" 2>/dev/null || true
  fi
  python3 scripts/services.py down || true
  echo "run: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

.venv/bin/honcho start -f Procfile &
honcho_pid=$!

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1; then
    echo "================================================================"
    echo " Casino-Club is running: http://127.0.0.1:$PORT   (ready in $(( $(date +%s) - t0 ))s)"
    echo " API docs: http://127.0.0.1:$PORT/api/docs   admin: admin / \$CC_ADMIN_PASSWORD"
    echo " Ctrl-C stops everything."
    echo "================================================================"
    break
  fi
  kill -0 "$honcho_pid" 2>/dev/null || break
  sleep 0.2
done
wait "$honcho_pid"

#!/usr/bin/env bash
# Run a command with DATABASE_URL / REDIS_URL / CLICKHOUSE_URL / KAFKA_BOOTSTRAP_SERVERS
# pointing at answering servers (scripts/services.py finds or starts them). The app database is "casino" on that
# server unless DATABASE_URL names another database.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/services.py up >&2
set -a
# shellcheck disable=SC1091
. .local/services.env
set +a
if [[ "$DATABASE_URL" == */postgres ]]; then
  export DATABASE_URL="${DATABASE_URL%/postgres}/${CC_DB_NAME:-casino}"
fi
exec "$@"

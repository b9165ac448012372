#!/usr/bin/env bash
# `make test`: lint + types, then the whole suite against real PostgreSQL, Redis,
# ClickHouse and a Kafka-protocol broker (scripts/services.py finds or starts them and
# writes their URLs to .local/services.env). The suite creates its own database and
# Redis DB per run (tests/conftest.py), its own ClickHouse database and topic prefix
# (tests/pipeline/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/services.py up
set -a
# shellcheck disable=SC1091
. .local/services.env
set +a
LINT_PATHS=(ccweb worker realtime tests scripts bench loadtests migrations/env.py)
echo "== ruff"
.venv/bin/ruff check "${LINT_PATHS[@]}"
.venv/bin/ruff format --check "${LINT_PATHS[@]}"
echo "== mypy"
.venv/bin/mypy
echo "== import contracts"
PYTHONPATH=. .venv/bin/lint-imports --no-cache
# promtool (Debian's prometheus package) checks the alert rules and the dashboards'
# PromQL (tests/ops): unpacked into .local/tools, never installed as a service. Without
# apt those checks skip, saying so; the pure-Python checks of the same files still run.
if ! command -v promtool >/dev/null 2>&1 && [ ! -x .local/tools/usr/bin/promtool ]; then
  echo "== promtool (apt-get download prometheus → .local/tools)"
  (mkdir -p .local/tools && cd .local/tools && apt-get download prometheus >/dev/null 2>&1 \
    && dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb) \
    || echo "test: promtool unavailable; its checks will skip" >&2
fi
# Debian's Chromium drives the player client's browser tests (tests/browser: Playwright's
# Python client pointed at /usr/bin/chromium, never a downloaded browser). Installed from
# apt when missing (as root, or with sudo); without it those tests fail, saying why.
if [ ! -x /usr/bin/chromium ]; then
  echo "== chromium (apt-get install chromium)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
  (export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y chromium >/dev/null 2>&1 \
      || { $SUDO apt-get update >/dev/null 2>&1 && $SUDO apt-get install -y chromium >/dev/null 2>&1; }) \
    || echo "test: chromium unavailable (apt-get install chromium); the browser tests will fail" >&2
fi
echo "== pytest"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "test: pytest collected no tests — that is a failure" >&2
fi
exit "$rc"

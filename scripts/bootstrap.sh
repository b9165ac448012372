#!/usr/bin/env bash
# Create the virtualenv and install the pinned requirements. On a fresh Debian/Ubuntu
# machine python3 may lack the venv module (package python3-venv): install it then.
set -euo pipefail
PY="${1:-python3}"
VENV="${2:-.venv}"
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "bootstrap: installing python3 (apt)"; apt-get install -y python3 python3-venv python3-pip
fi
if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "bootstrap: installing python3-venv (apt)"
  ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  apt-get install -y "python${ver}-venv" || { apt-get update && apt-get install -y "python${ver}-venv" python3-venv; }
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
echo "bootstrap: dependencies installed in $VENV"

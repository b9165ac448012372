"""Property: no request the OpenAPI document allows — or malforms — gets a 500.

Runs schemathesis (fuzzing and coverage phases, generated from ``/api/openapi.json``)
against the real server process with an admin token, checking only
``not_a_server_error``. Login/refresh/logout are left out: fuzzing them locks the account
or revokes the token the run uses (their bad input is covered in test_auth.py), and so is
the KPI endpoint: the suite's server runs without ClickHouse, where it answers 503 by
design (its bad input is covered against a real ClickHouse in tests/pipeline/test_kpis.py). A
bounded number of examples keeps it to seconds; raise ``--max-examples`` locally to dig.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.factories import create_user
from tests.processes import start_server

ROOT = Path(__file__).resolve().parents[2]


def test_no_generated_request_causes_a_server_error(subprocess_env):
    admin = create_user(is_admin=True, gold=1_000_000)
    proc, port = start_server(subprocess_env)
    try:
        base = f"http://127.0.0.1:{port}"
        req = urllib.request.Request(
            base + "/api/auth/admin/login",
            method="POST",
            data=json.dumps({"site_id": admin["site_id"], "password": admin["password"]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        token = json.loads(urllib.request.urlopen(req).read())["access_token"]
        cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
        assert cli, "schemathesis is in requirements.txt"
        run = subprocess.run(
            [
                cli,
                "run",
                base + "/api/openapi.json",
                "--checks",
                "not_a_server_error",
                "-H",
                f"Authorization: Bearer {token}",
                "--max-examples",
                "12",
                "--exclude-path-regex",
                "login|refresh|logout|analytics/kpis",
                "--seed",
                "1",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
        assert run.returncode == 0, run.stdout[-4000:]
        assert "generated" in run.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)

"""Under gevent, password hashing runs off the event loop (in a real OS thread), so a
login does not stall every other request of its web process."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.processes import ROOT

SCRIPT = """
from gevent import monkey
monkey.patch_all()
import json
from gevent.monkey import get_original
from ccweb.auth import passwords

get_ident = get_original("_thread", "get_ident")
main = get_ident()
elsewhere = passwords.off_loop(get_ident)
h = passwords.hash_password("correct horse")
print(json.dumps({"main": main, "elsewhere": elsewhere,
                  "ok": passwords.verify_password(h, "correct horse"),
                  "bad": passwords.verify_password(h, "wrong horse")}))
"""


def test_hashing_runs_in_the_thread_pool_under_gevent():
    env = {"CC_ARGON2_TIME_COST": "1", "CC_ARGON2_MEMORY_KIB": "1024", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["elsewhere"] != got["main"]
    assert got["ok"] is True and got["bad"] is False


def test_without_gevent_it_runs_here():
    import threading

    from ccweb.auth import passwords

    assert passwords.off_loop(threading.get_ident) == threading.get_ident()

#!/usr/bin/env python3
"""Make PostgreSQL and Redis available for `make run` / `make test` (stdlib only).

Why: the backend needs both servers, and machines differ (system services, a
server given via DATABASE_URL / REDIS_URL, or nothing installed and no Docker).
Per service this uses the first of: (1) $DATABASE_URL / $REDIS_URL if it
answers; (2) the default local server (postgres with trust auth on
127.0.0.1:5432, redis on 127.0.0.1:6379) if it answers; (3) a project-local
instance started here (apt-get installing binaries if needed) with data under
.local/services/ and a free port. CC_LOCAL_SERVICES=1 or --local forces (3).

  python3 scripts/services.py up [--env-file .local/services.env] [--local]
  python3 scripts/services.py down      # stops only what `up` started
  python3 scripts/services.py status

The env file holds KEY=VALUE lines: `set -a; . .local/services.env; set +a`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".local" / "services"
STATE_FILE = STATE_DIR / "started.json"
DEFAULT_ENV = ROOT / ".local" / "services.env"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
TIMEOUT = 30.0
IS_ROOT = os.geteuid() == 0
State = dict[str, Any]  # contents of started.json


class ServiceError(Exception):
    pass


def run(
    cmd: list[str], timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
        cwd="/",
    )  # cwd: the postgres user may not be able to enter ours
    if check and p.returncode != 0:
        raise ServiceError(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout.strip()}")
    return p


def as_pg(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run via the postgres system user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if IS_ROOT else cmd


def load_state() -> State:
    try:
        return dict(json.loads(STATE_FILE.read_text()))
    except (OSError, ValueError):
        return {}


def save_state(state: State) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps(state, indent=2) + "\n")


def free_port(*preferred: int) -> int:
    """First preferred port that can be bound on 127.0.0.1, else one the kernel picks."""
    for port in (*[p for p in preferred if p], 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return int(s.getsockname()[1])
            except OSError:
                continue
    raise ServiceError("no free TCP port on 127.0.0.1")


def redact(url: str) -> str:
    u = urlsplit(url)
    return url.replace(f":{u.password}@", ":***@", 1) if u.password else url


def tail(path: Path, n: int = 25) -> str:
    return (
        "\n".join(path.read_text(errors="replace").splitlines()[-n:])
        if path.exists()
        else "(no log)"
    )


def apt_install(pkg: str) -> None:
    if not shutil.which("apt-get"):
        raise ServiceError(
            f"{pkg} is not installed and apt-get is unavailable; install it manually"
        )
    if not IS_ROOT:
        raise ServiceError(f"{pkg} is not installed; run as root or: sudo apt-get install -y {pkg}")
    print(f"Installing {pkg} with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", pkg]
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, stdout=subprocess.DEVNULL, check=False)
        if subprocess.run(cmd, env=env, check=False).returncode != 0:
            raise ServiceError(f"apt-get install {pkg} failed")


# ---------------------------------------------------------------- PostgreSQL
def pg_startup_check(url: str) -> bool:
    """Fallback without client tools: send a StartupMessage, accept any auth request."""
    u = urlsplit(url)
    user = unquote(u.username or "postgres")
    db = unquote(u.path.lstrip("/")) or user
    body = struct.pack("!i", 196608) + f"user\0{user}\0database\0{db}\0\0".encode()
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=5) as s:
            s.sendall(struct.pack("!i", len(body) + 4) + body)
            return s.recv(1)[:1] == b"R"  # 'R' = authentication request/ok, 'E' = error
    except OSError:
        return False


def pg_answers(url: str) -> bool:
    # psql first: unlike pg_isready it also proves that authentication works
    # (a stock Debian server answers on 5432 but wants a password over TCP).
    url = "postgresql://" + url.split("://", 1)[1] if "://" in url else url  # drop +asyncpg etc.
    env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
    for tool, args in (
        ("psql", ["-X", "-w", "-At", "-c", "select 1", "-d"]),
        ("pg_isready", ["-t", "5", "-d"]),
    ):
        if shutil.which(tool):
            try:
                return (
                    subprocess.run(
                        [tool, *args, url],
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        timeout=15,
                        check=False,
                    ).returncode
                    == 0
                )
            except subprocess.TimeoutExpired:
                return False
    return pg_startup_check(url)


def pg_bin_dir(version: str | None = None) -> Path | None:
    base = Path("/usr/lib/postgresql")
    dirs = [
        d
        for d in base.glob("*/bin")
        if (d / "pg_ctl").exists() and d.parent.name.replace(".", "").isdigit()
    ]
    if version:
        dirs = [d for d in dirs if d.parent.name == version]
    return max(dirs, key=lambda d: [int(x) for x in d.parent.name.split(".")], default=None)


def pg_base_dir() -> Path:
    """.local/services/pg, unless the postgres user cannot reach the repo."""
    local = STATE_DIR / "pg"
    if not IS_ROOT or run(as_pg(["test", "-x", str(STATE_DIR)]), check=False).returncode == 0:
        return local
    digest = hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
    alt = Path(f"/var/tmp/casino-club-{digest}")
    alt.mkdir(mode=0o755, exist_ok=True)
    return alt / "pg"


def start_local_pg(state: State) -> tuple[str, str]:
    prev = state.get("postgres") or {}
    base = Path(prev.get("base") or pg_base_dir())
    data, log = base / "data", base / "server.log"
    pidlines = (
        (data / "postmaster.pid").read_text().splitlines()
        if (data / "postmaster.pid").exists()
        else []
    )
    version = (data / "PG_VERSION").read_text().strip() if (data / "PG_VERSION").exists() else None
    if len(pidlines) > 3 and version and pg_bin_dir(version):  # left running by an earlier `up`?
        bindir, port = pg_bin_dir(version), int(pidlines[3])  # line 4 of postmaster.pid is the port
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        if run(
            as_pg([f"{bindir}/pg_ctl", "status", "-D", str(data)]), check=False
        ).returncode == 0 and pg_answers(url):
            state["postgres"] = {
                "url": url,
                "port": port,
                "base": str(base),
                "data": str(data),
                "bin": str(bindir),
            }
            return url, f"reusing project-local instance on port {port}"
    if not pg_bin_dir():
        apt_install("postgresql")
    if (
        IS_ROOT and run(["id", "postgres"], check=False).returncode != 0
    ):  # the Debian package normally creates it
        run(
            ["useradd", "--system", "--user-group", "--home-dir", "/var/lib/postgresql", "postgres"]
        )
    if version and not pg_bin_dir(
        version
    ):  # cluster of a no longer installed major version: dev data, re-init
        print(f"PostgreSQL: re-initialising {data} (version {version} is no longer installed)")
        shutil.rmtree(data)
    bindir = pg_bin_dir(version if data.exists() else None)
    if not bindir:
        raise ServiceError("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin")
    base.mkdir(parents=True, exist_ok=True)
    if IS_ROOT:
        shutil.chown(base, "postgres", "postgres")
    base.chmod(0o700)
    if not (data / "PG_VERSION").exists():
        run(
            as_pg(
                [
                    f"{bindir}/initdb",
                    "-D",
                    str(data),
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8" if Path("/usr/lib/locale/C.utf8").exists() else "--locale=C",
                ]
            ),
            timeout=180,
        )
        with open(data / "postgresql.conf", "a") as f:
            f.write("\ninclude_if_exists = 'cc_services.conf'\n")
    port = free_port(prev.get("port", 0), 55432)
    conf = data / "cc_services.conf"
    conf.write_text(
        f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{data}'\n"
    )
    if IS_ROOT:
        shutil.chown(conf, "postgres", "postgres")
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    state["postgres"] = {
        "url": url,
        "port": port,
        "base": str(base),
        "data": str(data),
        "bin": str(bindir),
    }
    save_state(state)  # record before starting so that `down` can always clean up
    p = run(
        as_pg(
            [
                f"{bindir}/pg_ctl",
                "start",
                "-w",
                "-t",
                str(int(TIMEOUT)),
                "-D",
                str(data),
                "-l",
                str(log),
            ]
        ),
        timeout=TIMEOUT + 15,
        check=False,
    )
    if p.returncode != 0 or not pg_answers(url):
        raise ServiceError(
            f"PostgreSQL did not start on port {port}.\n{p.stdout.strip()}\n--- {log}:\n{tail(log)}"
        )
    return url, f"started project-local instance on port {port}"


def stop_local_pg(info: State) -> None:
    if Path(info["data"], "postmaster.pid").exists():
        run(
            as_pg([f"{info['bin']}/pg_ctl", "stop", "-w", "-m", "fast", "-D", info["data"]]),
            timeout=60,
            check=False,
        )


# --------------------------------------------------------------------- Redis
def redis_answers(url: str) -> bool:
    u = urlsplit(url)
    try:
        sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=3)
        if u.scheme == "rediss":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=u.hostname)
        with sock:
            if u.password:
                auth = (
                    [unquote(u.username), unquote(u.password)]
                    if u.username
                    else [unquote(u.password)]
                )
                sock.sendall(("AUTH " + " ".join(auth) + "\r\n").encode())
                if not sock.recv(256).startswith(b"+OK"):
                    return False
            sock.sendall(b"PING\r\n")
            return sock.recv(256).startswith(b"+PONG")
    except (OSError, ValueError):
        return False


def redis_pid(info: State) -> tuple[int, int]:
    """(pid, port) of our redis-server from its pidfile, (0, 0) if it is not running."""
    try:
        pid = int(Path(info["pidfile"]).read_text().strip())
        title = Path(f"/proc/{pid}/cmdline").read_bytes()  # e.g. b"redis-server 127.0.0.1:56379"
        return (
            (pid, int(title.split(b":")[-1].strip(b"\0 ")))
            if title.startswith(b"redis-server")
            else (0, 0)
        )
    except (OSError, ValueError):
        return 0, 0


def start_local_redis(state: State) -> tuple[str, str]:
    rdir = STATE_DIR / "redis"
    pidfile, log = rdir / "redis.pid", rdir / "redis.log"
    prev = state.get("redis") or {}
    pid, port = redis_pid({"pidfile": pidfile})  # left running by an earlier `up`?
    if pid and redis_answers(url := f"redis://127.0.0.1:{port}/0"):
        state["redis"] = {"url": url, "port": port, "pidfile": str(pidfile), "log": str(log)}
        return url, f"reusing project-local instance on port {port}"
    if not shutil.which("redis-server"):
        apt_install("redis-server")
    rdir.mkdir(parents=True, exist_ok=True)
    port = free_port(prev.get("port", 0), 56379)
    url = f"redis://127.0.0.1:{port}/0"
    state["redis"] = {"url": url, "port": port, "pidfile": str(pidfile), "log": str(log)}
    save_state(state)
    pidfile.unlink(missing_ok=True)
    p = run(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(rdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
            "--logfile",
            str(log),
        ],
        check=False,
    )
    deadline = time.time() + TIMEOUT
    while (
        p.returncode == 0 and not redis_answers(url) and time.time() < deadline
    ):  # daemonizes before listening
        time.sleep(0.2)
    if p.returncode != 0 or not redis_answers(url):
        raise ServiceError(
            f"Redis did not start on port {port}.\n{p.stdout.strip()}\n--- {log}:\n{tail(log)}"
        )
    return url, f"started project-local instance on port {port}"


def stop_local_redis(info: State) -> None:
    pid, deadline = redis_pid(info)[0], time.time() + 15
    if pid:
        os.kill(pid, signal.SIGTERM)
    while redis_pid(info)[0] and time.time() < deadline:
        time.sleep(0.1)
    if redis_pid(info)[0]:
        os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------ commands
def ensure(
    name: str,
    env_var: str,
    default: str,
    answers: Callable[[str], bool],
    start_local: Callable[[State], tuple[str, str]],
    force_local: bool,
    state: State,
) -> str:
    given = os.environ.get(env_var)
    if not force_local:
        if given and answers(given):
            print(f"{name}: using {env_var} {redact(given)} (already answering)")
            return str(given)
        if answers(default):
            note = f" ({env_var}={redact(given)} did not answer)" if given else ""
            print(f"{name}: using default local server {default} (already answering){note}")
            return default
    url, what = start_local(state)
    print(f"{name}: {what} ({url})")
    return url


def cmd_up(args: argparse.Namespace) -> None:
    force = args.local or os.environ.get("CC_LOCAL_SERVICES", "") not in ("", "0")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    state = load_state()
    db = ensure("PostgreSQL", "DATABASE_URL", DEFAULT_PG, pg_answers, start_local_pg, force, state)
    redis = ensure(
        "Redis", "REDIS_URL", DEFAULT_REDIS, redis_answers, start_local_redis, force, state
    )
    if state:
        save_state(state)
    env_file = ROOT / args.env_file  # an absolute --env-file replaces ROOT (pathlib semantics)
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(f"DATABASE_URL={db}\nREDIS_URL={redis}\n")
    print(f"Wrote {env_file}")


def cmd_down(args: argparse.Namespace) -> None:
    state = load_state()
    for key, name, stop in (
        ("postgres", "PostgreSQL", stop_local_pg),
        ("redis", "Redis", stop_local_redis),
    ):
        if key in state:
            stop(state[key])
            print(f"{name}: stopped project-local instance on port {state.pop(key)['port']}")
            save_state(state)


def cmd_status(args: argparse.Namespace) -> None:
    state, env_file = load_state(), ROOT / args.env_file
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    for key, name, var, answers in (
        ("postgres", "PostgreSQL", "DATABASE_URL", pg_answers),
        ("redis", "Redis", "REDIS_URL", redis_answers),
    ):
        if key in state:
            url = state[key]["url"]
            print(f"{name}: project-local instance {url}: {'up' if answers(url) else 'DOWN'}")
        if env.get(var) and env[var] != state.get(key, {}).get("url"):
            state_word = "up" if answers(env[var]) else "DOWN"
            print(f"{name}: {env_file.name} has {var}={redact(env[var])}: {state_word}")
        elif key not in state:
            print(f"{name}: nothing configured (run `up`)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("up", "down", "status"):
        sp = sub.add_parser(name)
        sp.add_argument("--env-file", default=str(DEFAULT_ENV.relative_to(ROOT)))
        if name == "up":
            sp.add_argument(
                "--local", action="store_true", help="always use project-local instances"
            )
    args = ap.parse_args()
    try:
        {"up": cmd_up, "down": cmd_down, "status": cmd_status}[args.cmd](args)
    except (ServiceError, subprocess.TimeoutExpired, OSError) as e:
        print(f"services.py {args.cmd}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

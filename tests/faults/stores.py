"""Project-local PostgreSQL and Redis servers that a fault test may stop, kill, pause.

Why: the shared servers (127.0.0.1:5432 and :6379) serve every other test run and agent
on the machine, so a test must never stop or SIGSTOP them. These classes start private
instances on free ports with throw-away data directories (``/tmp/cc-faults-*``), built
for speed, not durability (``fsync=off``), and let a test inflict the faults production
meets:

- ``stop()`` — orderly fast shutdown (``pg_ctl -m fast`` / SIGTERM): clients get
  "connection refused" until ``start()`` brings it back on the same port and data.
- ``kill()`` — SIGKILL of every server process (crash; PostgreSQL recovers from WAL on
  ``start()``, Redis comes back empty).
- ``pause()`` / ``resume()`` — SIGSTOP / SIGCONT: the port still accepts connections (the
  kernel completes the handshake) but nothing answers, the "store hangs" fault that only
  timeouts catch. For PostgreSQL the postmaster *and* every backend are stopped; a
  stopped postmaster alone would leave existing connections working.

PostgreSQL refuses to run as root, so as root its binaries run as the ``postgres`` OS
user (``scripts/services.py`` helpers). Redis runs without persistence
(``--save '' --appendonly no``): after ``stop()``/``kill()`` and ``start()`` it is empty,
as a cache node that lost its memory would be.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import redis

from ccweb.config import Settings
from scripts import services
from tests.processes import ROOT, free_port, start_server, start_worker, stop


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first level, then theirs), from /proc."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            kids = [
                int(k)
                for task in Path(f"/proc/{parent}/task").iterdir()
                for k in (task / "children").read_text().split()
            ]
        except OSError:
            continue
        out.extend(kids)
        todo.extend(kids)
    return out


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _workdir(kind: str) -> Path:
    """A fresh directory the ``postgres`` user can enter (pytest's tmp_path is
    root-only, 0700)."""
    path = Path(tempfile.mkdtemp(prefix=f"cc-faults-{kind}-"))
    path.chmod(0o755)
    return path


class LocalPostgres:
    """A private PostgreSQL 15 cluster (trust auth, user ``postgres``) on a free port."""

    def __init__(self, version: str = "15") -> None:
        bindir = services.pg_bin_dir(version) or services.pg_bin_dir()
        if bindir is None:
            raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql")
        self.bindir = bindir
        self.base = _workdir("pg")
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()
        self.paused = False
        if services.IS_ROOT:
            shutil.chown(self.base, "postgres", "postgres")
        services.run(
            services.as_pg(
                [
                    f"{bindir}/initdb",
                    "--no-sync",
                    "-D",
                    str(self.data),
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            timeout=120,
        )

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return services.run(
            services.as_pg([f"{self.bindir}/pg_ctl", "-D", str(self.data), *args]),
            timeout=timeout,
            check=False,
        )

    def postmaster_pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def pids(self) -> list[int]:
        """The postmaster first, then every backend and auxiliary process."""
        pid = self.postmaster_pid()
        return [pid, *descendants(pid)] if pid else []

    @property
    def running(self) -> bool:
        return self.postmaster_pid() is not None

    def start(self) -> None:
        """Start (or restart after stop/kill) on the same port and data directory."""
        opts = " ".join(
            f"-c {o}"
            for o in (
                f"port={self.port}",
                "listen_addresses=127.0.0.1",
                f"unix_socket_directories={self.data}",
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
                "shared_buffers=32MB",
                "max_connections=100",
            )
        )
        p = self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log), "-o", opts, timeout=90)
        if p.returncode != 0:
            raise RuntimeError(f"local PostgreSQL did not start:\n{p.stdout}\n{self.log_tail()}")
        self.paused = False

    def stop(self) -> None:
        """Fast shutdown: open sessions are terminated, new connections refused."""
        self.resume()
        p = self._pg_ctl("stop", "-w", "-t", "60", "-m", "fast")
        if self.running:
            raise RuntimeError(f"local PostgreSQL did not stop:\n{p.stdout}\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the postmaster and all its processes (a crash; ``start()`` recovers)."""
        pids = self.pids()
        _signal_all(pids, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP the postmaster (first, so it forks nothing new) and every child."""
        pid = self.postmaster_pid()
        if pid is None:
            raise RuntimeError("local PostgreSQL is not running")
        os.kill(pid, signal.SIGSTOP)
        _signal_all(descendants(pid), signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused:
            pids = self.pids()
            _signal_all(pids[1:], signal.SIGCONT)
            _signal_all(pids[:1], signal.SIGCONT)
            self.paused = False

    def heal(self) -> None:
        """Running and answering again, whatever a test left it in."""
        self.resume()
        if not self.running:
            self.start()

    def destroy(self) -> None:
        """Stop for good (immediate) and remove the data directory."""
        self.resume()
        if self.running:
            self._pg_ctl("stop", "-w", "-t", "20", "-m", "immediate")
        if self.running:
            self.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, n: int = 40) -> str:
        return services.tail(self.log, n)


class LocalRedis:
    """A private ``redis-server`` (no persistence) on a free port."""

    def __init__(self) -> None:
        self.dir = _workdir("redis")
        self.log = self.dir / "redis.log"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.running and self.proc else []

    def start(self) -> None:
        """Start (again) on the same port; the data set starts empty."""
        if self.running:
            return
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not services.redis_answers(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"local Redis did not start:\n{services.tail(self.log)}")
            time.sleep(0.05)
        self.paused = False

    def stop(self) -> None:
        """SIGTERM (Redis shuts down cleanly, closing every client connection)."""
        self.resume()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(20)
        self.paused = False

    def pause(self) -> None:
        if not self.running or self.proc is None:
            raise RuntimeError("local Redis is not running")
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused and self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.paused = False

    def heal(self) -> None:
        self.resume()
        if not self.running:
            self.start()

    def client(self, **kwargs: object) -> redis.Redis:
        """A client with short timeouts, so a paused server fails a call rather than
        hanging the test."""
        opts: dict = {"decode_responses": True, "socket_timeout": 5, "socket_connect_timeout": 5}
        return redis.Redis.from_url(self.url, **{**opts, **kwargs})

    def destroy(self) -> None:
        self.resume()
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class FaultStack:
    """A migrated, seeded database (``casino_faults``) on a :class:`LocalPostgres` plus a
    :class:`LocalRedis`, the environment the real entry points need to use them, and the
    processes a test started against them (stopped after each test)."""

    database = "casino_faults"
    prefix = "ccf"

    def __init__(self, pg: LocalPostgres, rds: LocalRedis, workdir: Path) -> None:
        self.pg = pg
        self.redis = rds
        self.workdir = workdir
        self.database_url = pg.url_for(self.database)
        self.env: dict[str, str] = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": rds.url,
            "CC_REDIS_PREFIX": self.prefix,
            "CC_ENV": "test",
            "CC_ARGON2_TIME_COST": "1",
            "CC_ARGON2_MEMORY_KIB": "1024",
            "CC_ACCESS_LOG": "0",
            "CC_LOG_LEVEL": "WARNING",
            "CC_FAILPOINTS": "",
            "KAFKA_BOOTSTRAP_SERVERS": "",  # sinks off (`make test` exports its servers)
            "CLICKHOUSE_URL": "",
        }
        self.procs: list[subprocess.Popen] = []

    @property
    def settings(self) -> Settings:
        """The same configuration as :attr:`env`, for code run in the test process."""
        return Settings.from_env(
            env="test",
            database_url=self.database_url,
            redis_url=self.redis.url,
            redis_prefix=self.prefix,
            argon2_time_cost=1,
            argon2_memory_kib=1024,
            access_log=False,
            log_level="WARNING",
            failpoints="",
            kafka_bootstrap_servers="",
            clickhouse_url="",
        )

    # -- the database ------------------------------------------------------------------
    def _manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ccweb.manage", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    def manage(self, *args: str) -> None:
        """``python -m ccweb.manage *args`` (ensure-db, migrate, seed, setup) against the
        local stores, in a subprocess so this process's engine and settings stay as they
        are."""
        p = self._manage(*args)
        if p.returncode != 0:
            raise RuntimeError(f"ccweb.manage {' '.join(args)} failed:\n{p.stdout}{p.stderr}")

    def manage_output(self, *args: str) -> str:
        """``python -m ccweb.manage *args``'s standard output, whatever its exit code
        (``reconcile`` exits 1 on findings, and the report is what the test reads)."""
        p = self._manage(*args)
        if not p.stdout.strip():
            raise RuntimeError(f"ccweb.manage {' '.join(args)} printed nothing:\n{p.stderr}")
        return p.stdout

    def sql(self, query: str, params: dict | tuple | None = None) -> list[tuple]:
        """Run one statement on a fresh connection (autocommit) and return its rows. A new
        connection each time, with a connect timeout, so a test can probe a store it has
        just stopped or paused."""
        conn = psycopg2.connect(self.database_url, connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(query, params)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def scalar(self, query: str, params: dict | tuple | None = None) -> object:
        rows = self.sql(query, params)
        return rows[0][0] if rows else None

    def reset(self) -> None:
        """Empty every table (then seed again) and the Redis data set: for tests that
        need a clean slate rather than their own players."""
        tables = [
            r[0]
            for r in self.sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version'"
            )
        ]
        quoted = ", ".join(f'"{t}"' for t in tables)
        self.sql(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
        self.redis.client().flushall()
        self.manage("seed")

    def rds(self) -> redis.Redis:
        """A client of the local Redis (short timeouts, decoded strings)."""
        return self.redis.client()

    # -- processes ---------------------------------------------------------------------
    def _log(self, kind: str) -> Path:
        return self.workdir / f"{kind}{len(self.procs)}.log"

    def start_server(self, processes: int = 1, **env: str) -> tuple[subprocess.Popen, int]:
        """``python -m ccweb.server`` against the local stores; ``(process, port)``."""
        proc, port = start_server({**self.env, **env}, processes, self._log("server"))
        self.procs.append(proc)
        return proc, port

    def start_worker(self, *args: str, **env: str) -> subprocess.Popen:
        """``python -m worker *args`` against the local stores."""
        proc = start_worker({**self.env, **env}, *args, log_path=self._log("worker"))
        self.procs.append(proc)
        return proc

    def after_test(self) -> None:
        """Stop what the test started and bring both stores back, so a failing test
        cannot leave the next one a paused or stopped server."""
        for proc in self.procs:
            stop(proc)
        self.procs.clear()
        self.pg.heal()
        self.redis.heal()

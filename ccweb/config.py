"""Typed settings read from the environment.

Importable without Flask: the worker, the CLI and the tests build a ``Settings`` the
same way the web process does, so every process agrees on URLs, prefixes and limits.
Every knob the system has lives here; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from typing import Any


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


def _float(name: str, default: float) -> float:
    return float(_env(name, str(default)))


def _bool(name: str, default: bool) -> bool:
    return _env(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """All configuration. Field comments name the environment variable."""

    env: str = "dev"  # CC_ENV: dev | test | prod
    database_url: str = "postgresql://postgres@127.0.0.1:5432/casino"  # DATABASE_URL
    redis_url: str = "redis://127.0.0.1:6379/0"  # REDIS_URL
    redis_prefix: str = "cc"  # CC_REDIS_PREFIX: every Redis key starts with it
    stream_partitions: int = 4  # CC_STREAM_PARTITIONS: <prefix>:events:{p}
    kafka_bootstrap_servers: str = ""  # KAFKA_BOOTSTRAP_SERVERS (optional sink)
    clickhouse_url: str = ""  # CLICKHOUSE_URL (optional sink)
    port: int = 8000  # PORT
    host: str = "0.0.0.0"  # CC_HOST
    web_processes: int = 1  # CC_WEB_PROCESSES: pre-forked gevent servers on one socket
    web_restart_limit: int = 5  # CC_WEB_RESTART_LIMIT: replacements per minute, then stop
    db_pool_size: int = 8  # CC_DB_POOL_SIZE: connections kept per pool (two pools per process)
    db_max_overflow: int = 2  # CC_DB_MAX_OVERFLOW: extra connections per pool under bursts
    db_pool_timeout_s: float = 1.0  # CC_DB_POOL_TIMEOUT_S: wait for a free connection, then 503
    db_connect_timeout_s: float = 2.0  # CC_DB_CONNECT_TIMEOUT_S
    db_statement_timeout_ms: int = 2000  # CC_DB_STATEMENT_TIMEOUT_MS (server side)
    worker_statement_timeout_ms: int = 30_000  # CC_WORKER_STATEMENT_TIMEOUT_MS (worker's)
    db_idle_tx_timeout_ms: int = 10_000  # CC_DB_IDLE_TX_TIMEOUT_MS (server side)
    redis_timeout_s: float = 1.0  # CC_REDIS_TIMEOUT_S: per command (plus a blocking read's block)
    redis_connect_timeout_s: float = 1.0  # CC_REDIS_CONNECT_TIMEOUT_S
    jwt_secret: str = "dev-only-insecure-jwt-secret-change-me!"  # CC_JWT_SECRET
    access_token_ttl_s: int = 15 * 60  # CC_ACCESS_TTL_S
    refresh_token_ttl_s: int = 14 * 24 * 3600  # CC_REFRESH_TTL_S
    admin_password: str = "admin-pass-1234"  # CC_ADMIN_PASSWORD
    argon2_time_cost: int = 2  # CC_ARGON2_TIME_COST
    argon2_memory_kib: int = 19 * 1024  # CC_ARGON2_MEMORY_KIB (OWASP minimum)
    login_max_failures: int = 5  # CC_LOGIN_MAX_FAILURES
    login_lock_window_s: int = 600  # CC_LOGIN_LOCK_WINDOW_S
    signup_grant_gold: int = 1000  # CC_SIGNUP_GRANT_GOLD
    xp_per_round: int = 10  # CC_XP_PER_ROUND: experience for every game round played
    access_log: bool = True  # CC_ACCESS_LOG: one JSON line per request
    log_level: str = "INFO"  # CC_LOG_LEVEL
    publish_dedupe_ttl_s: int = 900  # CC_PUBLISH_DEDUPE_TTL_S: Redis memory of published ids
    outbox_retention_h: float = 24.0  # CC_OUTBOX_RETENTION_H: keep published rows this long
    processed_retention_h: float = 48.0  # CC_PROCESSED_RETENTION_H: consumer dedupe memory
    relay_poll_s: float = 0.2  # CC_RELAY_POLL_S: relay wake-up period
    relay_grace_s: float = 0.5  # CC_RELAY_GRACE_S: leave fresh rows to the fast path
    stream_maxlen: int = 1_000_000  # CC_STREAM_MAXLEN: approximate cap per partition
    worker_batch: int = 200  # CC_WORKER_BATCH: entries per XREADGROUP
    worker_block_ms: int = 1000  # CC_WORKER_BLOCK_MS
    worker_linger_ms: int = 50  # CC_WORKER_LINGER_MS: let a small batch fill up first
    worker_reclaim_idle_ms: int = 30_000  # CC_WORKER_RECLAIM_IDLE_MS
    worker_max_deliveries: int = 5  # CC_WORKER_MAX_DELIVERIES: then dead-letter
    worker_backoff_ms: int = 200  # CC_WORKER_BACKOFF_MS: first wait after a store outage
    worker_backoff_max_ms: int = 5000  # CC_WORKER_BACKOFF_MAX_MS: cap of the doubling wait
    worker_metrics_port: int = 0  # CC_WORKER_METRICS_PORT: 0 = no HTTP metrics server
    worker_nice: int = 0  # CC_WORKER_NICE: CPU niceness increment of the worker process
    idempotency_stale_s: float = 10.0  # CC_IDEMPOTENCY_STALE_S: take over an open key
    shop_lock_ttl_s: float = 10.0  # CC_SHOP_LOCK_TTL_S: a purchase key's Redis lock lives this long
    shop_velocity_limit: int = 10  # CC_SHOP_VELOCITY_LIMIT: purchase attempts per player ...
    shop_velocity_window_s: int = 10  # CC_SHOP_VELOCITY_WINDOW_S: ... within this window
    ws_heartbeat_s: float = 25.0  # CC_WS_HEARTBEAT_S: realtime ping period (WebSocket, SSE)
    ws_queue_size: int = 256  # CC_WS_QUEUE_SIZE: messages a slow socket may owe, then drop it
    failpoints: str = ""  # CC_FAILPOINTS: fault tests only (ccweb/failpoints.py)
    hostname: str = field(default_factory=socket.gethostname)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        s = cls(
            env=_env("CC_ENV", cls.env),
            database_url=_env("DATABASE_URL", cls.database_url),
            redis_url=_env("REDIS_URL", cls.redis_url),
            redis_prefix=_env("CC_REDIS_PREFIX", cls.redis_prefix),
            stream_partitions=_int("CC_STREAM_PARTITIONS", cls.stream_partitions),
            kafka_bootstrap_servers=_env("KAFKA_BOOTSTRAP_SERVERS", ""),
            clickhouse_url=_env("CLICKHOUSE_URL", ""),
            port=_int("PORT", cls.port),
            host=_env("CC_HOST", cls.host),
            web_processes=_int("CC_WEB_PROCESSES", cls.web_processes),
            web_restart_limit=_int("CC_WEB_RESTART_LIMIT", cls.web_restart_limit),
            db_pool_size=_int("CC_DB_POOL_SIZE", cls.db_pool_size),
            db_max_overflow=_int("CC_DB_MAX_OVERFLOW", cls.db_max_overflow),
            db_pool_timeout_s=_float("CC_DB_POOL_TIMEOUT_S", cls.db_pool_timeout_s),
            db_connect_timeout_s=_float("CC_DB_CONNECT_TIMEOUT_S", cls.db_connect_timeout_s),
            db_statement_timeout_ms=_int("CC_DB_STATEMENT_TIMEOUT_MS", cls.db_statement_timeout_ms),
            worker_statement_timeout_ms=_int(
                "CC_WORKER_STATEMENT_TIMEOUT_MS", cls.worker_statement_timeout_ms
            ),
            db_idle_tx_timeout_ms=_int("CC_DB_IDLE_TX_TIMEOUT_MS", cls.db_idle_tx_timeout_ms),
            redis_timeout_s=_float("CC_REDIS_TIMEOUT_S", cls.redis_timeout_s),
            redis_connect_timeout_s=_float(
                "CC_REDIS_CONNECT_TIMEOUT_S", cls.redis_connect_timeout_s
            ),
            jwt_secret=_env("CC_JWT_SECRET", cls.jwt_secret),
            access_token_ttl_s=_int("CC_ACCESS_TTL_S", cls.access_token_ttl_s),
            refresh_token_ttl_s=_int("CC_REFRESH_TTL_S", cls.refresh_token_ttl_s),
            admin_password=_env("CC_ADMIN_PASSWORD", cls.admin_password),
            argon2_time_cost=_int("CC_ARGON2_TIME_COST", cls.argon2_time_cost),
            argon2_memory_kib=_int("CC_ARGON2_MEMORY_KIB", cls.argon2_memory_kib),
            login_max_failures=_int("CC_LOGIN_MAX_FAILURES", cls.login_max_failures),
            login_lock_window_s=_int("CC_LOGIN_LOCK_WINDOW_S", cls.login_lock_window_s),
            signup_grant_gold=_int("CC_SIGNUP_GRANT_GOLD", cls.signup_grant_gold),
            xp_per_round=_int("CC_XP_PER_ROUND", cls.xp_per_round),
            access_log=_bool("CC_ACCESS_LOG", cls.access_log),
            log_level=_env("CC_LOG_LEVEL", cls.log_level),
            publish_dedupe_ttl_s=_int("CC_PUBLISH_DEDUPE_TTL_S", cls.publish_dedupe_ttl_s),
            outbox_retention_h=_float("CC_OUTBOX_RETENTION_H", cls.outbox_retention_h),
            processed_retention_h=_float("CC_PROCESSED_RETENTION_H", cls.processed_retention_h),
            relay_poll_s=_float("CC_RELAY_POLL_S", cls.relay_poll_s),
            relay_grace_s=_float("CC_RELAY_GRACE_S", cls.relay_grace_s),
            stream_maxlen=_int("CC_STREAM_MAXLEN", cls.stream_maxlen),
            worker_batch=_int("CC_WORKER_BATCH", cls.worker_batch),
            worker_block_ms=_int("CC_WORKER_BLOCK_MS", cls.worker_block_ms),
            worker_linger_ms=_int("CC_WORKER_LINGER_MS", cls.worker_linger_ms),
            worker_reclaim_idle_ms=_int("CC_WORKER_RECLAIM_IDLE_MS", cls.worker_reclaim_idle_ms),
            worker_max_deliveries=_int("CC_WORKER_MAX_DELIVERIES", cls.worker_max_deliveries),
            worker_backoff_ms=_int("CC_WORKER_BACKOFF_MS", cls.worker_backoff_ms),
            worker_backoff_max_ms=_int("CC_WORKER_BACKOFF_MAX_MS", cls.worker_backoff_max_ms),
            worker_metrics_port=_int("CC_WORKER_METRICS_PORT", cls.worker_metrics_port),
            worker_nice=_int("CC_WORKER_NICE", cls.worker_nice),
            idempotency_stale_s=_float("CC_IDEMPOTENCY_STALE_S", cls.idempotency_stale_s),
            shop_lock_ttl_s=_float("CC_SHOP_LOCK_TTL_S", cls.shop_lock_ttl_s),
            shop_velocity_limit=_int("CC_SHOP_VELOCITY_LIMIT", cls.shop_velocity_limit),
            shop_velocity_window_s=_int("CC_SHOP_VELOCITY_WINDOW_S", cls.shop_velocity_window_s),
            ws_heartbeat_s=_float("CC_WS_HEARTBEAT_S", cls.ws_heartbeat_s),
            ws_queue_size=_int("CC_WS_QUEUE_SIZE", cls.ws_queue_size),
            failpoints=_env("CC_FAILPOINTS", ""),
        )
        return (replace(s, **overrides) if overrides else s).check()

    def check(self) -> Settings:
        """Refuse to run production with development secrets, or with retention settings
        that would let a re-published event count twice."""
        if self.env == "prod" and self.jwt_secret == Settings.jwt_secret:
            raise RuntimeError("CC_JWT_SECRET must be set in production")
        if len(self.jwt_secret) < 32:
            raise RuntimeError("CC_JWT_SECRET must be at least 32 characters")
        if self.processed_retention_h <= self.outbox_retention_h:
            # the relay may re-publish a row until the outbox forgets it; consumers must
            # still recognise the event then
            raise RuntimeError("CC_PROCESSED_RETENTION_H must exceed CC_OUTBOX_RETENTION_H")
        return self

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **overrides)

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL in the form SQLAlchemy wants (postgres:// → postgresql+psycopg2://)."""
        url = self.database_url
        for scheme in ("postgres://", "postgresql://"):
            if url.startswith(scheme):
                return "postgresql+psycopg2://" + url[len(scheme) :]
        return url


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings (read from the environment once)."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


def set_settings(settings: Settings) -> None:
    """Install settings for this process (app factory, worker bootstrap, tests)."""
    global _current
    _current = settings

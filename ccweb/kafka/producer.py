"""Forwarding envelopes to Kafka: one producer per process, one flush per worker batch.

Delivery is **at least once**; with the consumers' dedupe it is exactly once in effect:

* ``acks='all'``, idempotence on (kafka-python's default, which Tansu accepts) and
  ``max_in_flight_requests_per_connection=1``: the client's own retries neither lose,
  duplicate nor reorder messages within a partition.
* A worker batch is sent, flushed, and every message's acknowledgement checked before
  :meth:`Forwarder.forward` returns; only then does the worker acknowledge the Redis
  entries. A broker that is down, unreachable or too slow (no acknowledgement within
  ``DELIVERY_TIMEOUT_MS``) raises :class:`BrokerUnavailable`; the worker holds the whole
  batch and sends it again later. Messages of that batch that had reached the broker are
  then on Kafka twice — with the same ``event_id`` (a message header and the envelope's
  field), which is what Kafka consumers dedupe on, exactly like our Redis consumers do
  (``worker.dedupe``) and like ClickHouse's ReplacingMergeTree collapses replays.
* A record the broker refuses for its content (too large, invalid) raises
  :class:`RecordRejected`: that is the entry's fault, so the worker retries it alone and
  dead-letters it to the Redis dead-letter stream after the usual number of failures.

Envelopes that fail validation (:mod:`ccweb.kafka.topics`) are not errors: they are sent
to their ``.dlq`` topic with the reason in the ``error`` header and count as handled.

Compression is gzip: lz4 (the seed's default) and zstd need a native package that is not
a dependency; gzip needs none and compresses JSON well.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka import errors as kerr

from ccweb.config import Settings, get_settings
from ccweb.kafka import topics
from ccweb.kafka.metrics import KAFKA_DLQ, KAFKA_PRODUCE_FAIL, KAFKA_PRODUCE_LATENCY, KAFKA_PRODUCED


class _NotSlowTaskWarnings(logging.Filter):
    """Drops kafka-python's "Task … ran for 0.1xx s (>0.100 s threshold)" warning.

    That check times a step of the client's event loop by the wall clock, so on a worker
    that is niced or waiting for a core (``make loadtest`` at 400+ players) it fires dozens
    of times a minute and says nothing about the client or our code: the broker's
    acknowledgements are what the forwarder judges (``DELIVERY_TIMEOUT_MS``). Every other
    record of that logger (unhandled task errors, a task left running) still passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            isinstance(record.msg, str)
            and record.msg.startswith("Task ")
            and " ran for " in record.getMessage()
        )


_SLOW_TASK_FILTER = _NotSlowTaskWarnings()


def quiet_slow_task_warnings() -> None:
    """Install the filter on kafka-python's selector logger (once; idempotent)."""
    logger = logging.getLogger("kafka.net.selector")
    if _SLOW_TASK_FILTER not in logger.filters:
        logger.addFilter(_SLOW_TASK_FILTER)


log = logging.getLogger(__name__)

# Topic-name prefix of this deployment (tests and shared brokers), read per call so a
# test can change it; production uses none.
TOPIC_PREFIX_ENV = "CC_KAFKA_TOPIC_PREFIX"

COMPRESSION = "gzip"
REQUEST_TIMEOUT_MS = 3000  # one produce request
MAX_BLOCK_MS = 3000  # send() waiting for metadata or buffer space
BOOTSTRAP_TIMEOUT_MS = 3000  # first connection (the broker version probe)
LINGER_MS = 5  # the worker batches already; flush() sends at once anyway
# upper bound from send() to an answer (>= request timeout + linger): a batch fails
# within a few seconds, so the worker backs off instead of hanging on a dead broker
DELIVERY_TIMEOUT_MS = 5000
FLUSH_TIMEOUT_S = (DELIVERY_TIMEOUT_MS + 1000) / 1000

# The broker refused the record itself: sending it again cannot succeed.
_RECORD_ERRORS: tuple[type[BaseException], ...] = (
    kerr.MessageSizeTooLargeError,
    kerr.RecordListTooLargeError,
    kerr.InvalidRecordError,
    kerr.CorruptRecordError,
    kerr.InvalidTimestampError,
)


class BrokerUnavailable(Exception):
    """The broker could not take the batch (down, unreachable, timing out, refusing the
    request). Nothing is known to be wrong with the entries; send them again later.
    ``reason`` labels ``cc_kafka_produce_fail_total``."""

    def __init__(self, message: str, reason: str = "broker_error") -> None:
        super().__init__(message)
        self.reason = reason


class RecordRejected(Exception):
    """The broker refused a record because of its content (e.g. too large)."""


def topic_prefix() -> str:
    return os.environ.get(TOPIC_PREFIX_ENV, "")


@dataclass(frozen=True)
class Item:
    """One stream entry to forward: the envelope's JSON as published (``data``) and the
    entry's own ``event_type`` field (names the dead-letter topic if ``data`` is
    unreadable)."""

    data: str
    event_type: str = ""
    entry_id: str = ""  # the Redis entry id, for tracing a dead letter back


@dataclass
class Forwarded:
    sent: int = 0  # valid envelopes acknowledged on their topic
    dead_lettered: int = 0  # refused envelopes acknowledged on a .dlq topic


def _reason(exc: BaseException) -> str:
    if isinstance(exc, kerr.KafkaTimeoutError | kerr.RequestTimedOutError):
        return "timeout"
    if isinstance(exc, kerr.KafkaConnectionError | kerr.NodeNotReadyError | OSError):
        return "unreachable"
    return "broker_error"


class Forwarder:
    """Routes and sends envelopes with one :class:`KafkaProducer` (created lazily,
    dropped after an outage so the next batch starts from a fresh connection and producer
    id)."""

    def __init__(self, bootstrap_servers: str, prefix: str = "", **config: Any) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.prefix = prefix
        self.config = config
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _make_producer(self) -> KafkaProducer:
        quiet_slow_task_warnings()
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": f"ccweb-forwarder-{os.getpid()}",
            "acks": "all",
            "compression_type": COMPRESSION,
            "max_in_flight_requests_per_connection": 1,  # a retry cannot overtake
            "linger_ms": LINGER_MS,
            "request_timeout_ms": REQUEST_TIMEOUT_MS,
            "max_block_ms": MAX_BLOCK_MS,
            "delivery_timeout_ms": DELIVERY_TIMEOUT_MS,
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
            "reconnect_backoff_max_ms": 1000,
            **self.config,
        }
        return KafkaProducer(**config)

    def producer(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                try:
                    self._producer = self._make_producer()
                except kerr.KafkaError as exc:
                    raise BrokerUnavailable(
                        f"no connection to {self.bootstrap_servers}: {exc}", "unreachable"
                    ) from exc
            return self._producer

    def close(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=timeout_s)
            except Exception:  # closing a producer of a dead broker may complain
                log.warning("closing the Kafka producer failed", exc_info=True)

    def forward(self, items: Sequence[Item]) -> Forwarded:
        """Send every item (valid ones to their topic, refused ones to a ``.dlq``), flush,
        and return once the broker acknowledged all of them. Raises
        :class:`BrokerUnavailable` (the batch is to be sent again) or
        :class:`RecordRejected` (some record can never be sent)."""
        result = Forwarded()
        if not items:
            return result
        started = time.perf_counter()
        try:
            self._forward(items, result)
        except BrokerUnavailable as exc:
            KAFKA_PRODUCE_FAIL.labels(reason=exc.reason).inc(len(items))
            self.close(timeout_s=0)
            raise
        finally:
            KAFKA_PRODUCE_LATENCY.observe(time.perf_counter() - started)
        return result

    def _forward(self, items: Sequence[Item], result: Forwarded) -> None:
        producer = self.producer()
        sent: list[tuple[str, bool, Any]] = []  # (base topic, is dlq, future)
        try:
            for item in items:
                routed = topics.classify(item.data, item.event_type)
                value = item.data.encode()
                if isinstance(routed, topics.Routed):
                    headers = [
                        ("event_id", routed.event_id.encode()),
                        ("event_type", routed.event_type.encode()),
                    ]
                    future = producer.send(
                        topics.topic_name(self.prefix, routed.topic),
                        key=routed.key.encode(),
                        value=value,
                        headers=headers,
                    )
                    sent.append((routed.topic, False, future))
                else:
                    log.warning(
                        "entry %s (%s) refused for Kafka, to %s: %s",
                        item.entry_id,
                        routed.event_type or item.event_type,
                        routed.dlq,
                        routed.error,
                    )
                    headers = [("error", routed.error.encode()[:2000])]
                    if routed.event_id:
                        headers.append(("event_id", routed.event_id.encode()))
                    if routed.event_type or item.event_type:
                        headers.append(
                            ("event_type", (routed.event_type or item.event_type).encode())
                        )
                    if item.entry_id:
                        headers.append(("stream_entry_id", item.entry_id.encode()))
                    future = producer.send(
                        topics.topic_name(self.prefix, routed.dlq), value=value, headers=headers
                    )
                    sent.append((routed.dlq, True, future))
            producer.flush(timeout=FLUSH_TIMEOUT_S)
        except _RECORD_ERRORS as exc:  # raised by send() for an oversized record
            KAFKA_PRODUCE_FAIL.labels(reason="record_rejected").inc()
            raise RecordRejected(str(exc)) from exc
        except kerr.KafkaError as exc:
            raise BrokerUnavailable(f"sending to Kafka failed: {exc}", _reason(exc)) from exc
        self._check(sent, result)

    def _check(self, sent: list[tuple[str, bool, Any]], result: Forwarded) -> None:
        outage: BaseException | None = None
        rejected: BaseException | None = None
        for topic, is_dlq, future in sent:
            try:
                future.get(timeout=0)
            except _RECORD_ERRORS as exc:
                rejected = rejected or exc
                continue
            except kerr.KafkaError as exc:
                outage = outage or exc
                continue
            KAFKA_PRODUCED.labels(topic=topic).inc()
            if is_dlq:
                KAFKA_DLQ.labels(topic=topic).inc()
                result.dead_lettered += 1
            else:
                result.sent += 1
        if outage is not None:  # the batch goes again as a whole: an outage wins
            raise BrokerUnavailable(
                f"Kafka did not acknowledge the batch: {outage}", _reason(outage)
            ) from outage
        if rejected is not None:
            KAFKA_PRODUCE_FAIL.labels(reason="record_rejected").inc()
            raise RecordRejected(f"Kafka refused a record: {rejected}") from rejected


_current: Forwarder | None = None
_current_pid = 0
_current_lock = threading.Lock()


def get_forwarder(settings: Settings | None = None) -> Forwarder:
    """This process's forwarder for the configured broker and topic prefix (created on
    first use; a new one when either changed or the process forked). Raises
    :class:`BrokerUnavailable` when no broker is configured."""
    global _current, _current_pid
    settings = settings or get_settings()
    bootstrap = settings.kafka_bootstrap_servers
    if not bootstrap:
        raise BrokerUnavailable("KAFKA_BOOTSTRAP_SERVERS is not set")
    prefix = topic_prefix()
    with _current_lock:
        current = _current
        if (
            current is not None
            and _current_pid == os.getpid()
            and (current.bootstrap_servers, current.prefix) == (bootstrap, prefix)
        ):
            return current
        if current is not None and _current_pid == os.getpid():
            current.close()
        _current, _current_pid = Forwarder(bootstrap, prefix), os.getpid()
        return _current


def close(timeout_s: float = 5.0) -> None:
    """Close this process's producer (worker shutdown; also registered with atexit)."""
    global _current
    with _current_lock:
        current, _current = _current, None
    if current is not None and _current_pid == os.getpid():
        current.close(timeout_s)


atexit.register(close)

"""Prometheus instruments of the Kafka forwarder (seed 002 §11), ``cc_`` prefixed like
:mod:`ccweb.metrics`. Topic labels are base topic names (without the deployment's
prefix), so their number is bounded by the routing table."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

KAFKA_PRODUCED = Counter(
    "cc_kafka_produced_total",
    "Messages the broker acknowledged (acks=all), by base topic (dead-letter topics too)",
    ["topic"],
)
KAFKA_PRODUCE_FAIL = Counter(
    "cc_kafka_produce_fail_total",
    "Messages not acknowledged, by reason: unreachable (no broker / connection), timeout"
    " (no answer in time), broker_error (the broker refused the request), record_rejected"
    " (the broker refused this record for its content: the entry's fault)",
    ["reason"],
)
# every reason at 0 from the start: rate() cannot see a series' first increment, and the
# failure-ratio alert (ops/alerts) must see the first failures
for _reason in ("unreachable", "timeout", "broker_error", "record_rejected"):
    KAFKA_PRODUCE_FAIL.labels(reason=_reason)
KAFKA_DLQ = Counter(
    "cc_kafka_dlq_total",
    "Entries that failed validation and were acknowledged on a dead-letter topic",
    ["topic"],
)
KAFKA_PRODUCE_LATENCY = Histogram(
    "cc_kafka_produce_latency_seconds",
    "One worker batch: send every message, flush, until all are acknowledged or failed",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

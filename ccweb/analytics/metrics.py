"""Prometheus instruments of the ClickHouse ingester (seed 002 §11), ``cc_`` prefixed like
:mod:`ccweb.metrics`. Recorded by ``worker/handlers/analytics.py`` and the KPI route."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CH_INSERT_BATCH_SIZE = Histogram(
    "cc_ch_insert_batch_size",
    "Rows per INSERT into events_raw (a worker batch, split so no INSERT exceeds 1 MB)",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
CH_INSERT_LATENCY_MS = Histogram(
    "cc_ch_insert_latency_ms",
    "Time of one accepted INSERT into events_raw (and its materialized views), in ms",
    buckets=(1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
)
CH_INGEST_LAG_SECONDS = Histogram(
    "cc_ch_ingest_lag_seconds",
    "Event time (envelope ts) to its INSERT being accepted by ClickHouse",
    buckets=(0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 120.0, 600.0),
)
CH_INSERT_FAIL = Counter(
    "cc_ch_insert_fail_total",
    "Failed ingestion, by reason: unavailable (ClickHouse unreachable, timing out, overloaded"
    " or not migrated: the batch is held), rejected (ClickHouse refused the rows: retried"
    " one by one), malformed (an envelope that cannot become a row: dead-lettered)",
    ["reason"],
)
for _reason in ("unavailable", "rejected", "malformed"):  # at 0 from the start (rate())
    CH_INSERT_FAIL.labels(reason=_reason)
CH_KPI_QUERY_SECONDS = Histogram(
    "cc_ch_kpi_query_seconds",
    "Time to answer GET /api/admin/analytics/kpis from ClickHouse",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5),
)

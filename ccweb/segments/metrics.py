"""``cc_segment_*`` / ``cc_rfm_*`` instruments (seed 003 §3: batch duration, real-time lag,
staleness, label counts).

The worker sets them (it serves its own registry): the nightly batch, the ``segments``
consumer group's lag. The web server imports this module too (the admin routes, the
command) and runs under prometheus_client's multiprocess collector, where a gauge needs
a ``multiprocess_mode``: the latest value wins (``mostrecent``), whichever process set it.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

BATCH_SECONDS = Histogram(
    "cc_segment_batch_duration_seconds",
    "Time of one RFM batch (every player, one statement, commit included)",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0),
)
BATCH_TOTAL = Counter("cc_segment_batch_total", "RFM batches run, by result", ["result"])
LABEL_COUNT = Gauge(
    "cc_segment_label_count",
    "Players per segment label after the latest batch",
    ["label"],
    multiprocess_mode="mostrecent",
)
STALE_USERS = Gauge(
    "cc_rfm_stale_users",
    "Segment rows not rewritten for 24 h (the nightly batch did not run)",
    multiprocess_mode="mostrecent",
)
LAST_BATCH = Gauge(
    "cc_segment_last_batch_timestamp_seconds",
    "Unix time the latest successful RFM batch finished",
    multiprocess_mode="mostrecent",
)
REALTIME_LAG = Histogram(
    "cc_segment_realtime_lag_seconds",
    "Purchase or settlement event time → the player's segment recomputed (committed)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)


def record_batch(seconds: float, labels: dict[str, int], stale: int) -> None:
    BATCH_SECONDS.observe(seconds)
    BATCH_TOTAL.labels(result="success").inc()
    for label, n in labels.items():
        LABEL_COUNT.labels(label=label).set(n)
    STALE_USERS.set(stale)
    LAST_BATCH.set(time.time())


def record_failure() -> None:
    BATCH_TOTAL.labels(result="failure").inc()

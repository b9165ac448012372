"""``cc_dq_*`` instruments. The worker sets them after every scheduled run (it serves its
own registry); a web process that runs a fresh report sets its own copy, so the gauges
combine as ``mostrecent`` under the multiprocess collector."""

from __future__ import annotations

import time

from prometheus_client import Gauge, Histogram

from ccweb.quality.checks import Report

DQ_FINDINGS = Gauge(
    "cc_dq_findings",
    "Findings of the latest data-quality run, per check (integrity checks must be 0)",
    ["check"],
    multiprocess_mode="mostrecent",
)
DQ_RUN_SECONDS = Histogram(
    "cc_dq_run_seconds",
    "Time of one data-quality run (all checks, one snapshot)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
DQ_LAST_RUN = Gauge(
    "cc_dq_last_run_timestamp",
    "Unix time the latest data-quality run finished",
    multiprocess_mode="mostrecent",
)


def record(report: Report) -> None:
    for name, count in report.counts().items():
        DQ_FINDINGS.labels(check=name).set(count)
    DQ_RUN_SECONDS.observe(report.duration_s)
    DQ_LAST_RUN.set(time.time())

"""Data quality: scheduled checks and anomaly rules over the live data, and a replay that
rebuilds balances (from the ledger) and event/mission progress (from ClickHouse's
``events_raw``) and reports every difference from what is stored.

* :mod:`.checks` — the checks the worker runs every minute (bounded windows) and the
  report they produce; :mod:`.anomalies` — the abuse rules (gold per minute, claim
  bursts, win rate against the engines' exact odds).
* :mod:`.replay` — disaster recovery and cross-check (an operator command, full scans).
* :mod:`.jobs` — the worker's scheduled loop; :mod:`.routes` — ``GET
  /api/admin/data-quality``; :mod:`.metrics` — ``cc_dq_*``.
* ``python -m ccweb.quality check|replay [--json]`` exits 1 when anything is found.

Read-only everywhere: nothing here repairs data (a negative balance or a double payment
needs a human and an audited admin adjustment, not a job).
"""

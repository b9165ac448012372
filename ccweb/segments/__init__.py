"""RFM segmentation (seed 003 §3, issue 13): one snapshot per player who bought something.

* :mod:`.rules` — the rules, pure and defined once for Python and SQL (definitions of
  R/F/M, scores, labels);
* :mod:`.rfm` — the batch and the incremental recompute, one statement each (who has a
  row, thresholds before the first batch, the writers' lock, after-commit touches);
* :mod:`.store` — what other features read (``label_of``, ``segment_of``,
  ``label_counts``);
* :mod:`.jobs` — the nightly batch in the worker, batches on request, the command
  (``python -m ccweb.segments``); :mod:`.metrics` — ``cc_segment_*``, ``cc_rfm_*``.

The worker's ``segments`` consumer group (``worker/handlers/segments.py``) recomputes a
player after their purchase; the admin endpoints are ``ccweb/admin/segment_routes.py``.
"""

"""LiveOps: events, missions and achievements driven by gameplay (SPEC §3 "Events,
missions, achievements, rewards").

* :mod:`.models` — definitions (events, mission templates, achievements) and the
  per-player rows (participations, user missions, unlocks);
* :mod:`.rules` — requirement/reward shapes and the pure progress arithmetic the worker
  and the tests share;
* :mod:`.service` — what players read and join; :mod:`.claims` — paying rewards through
  the wallet ledger exactly once; :mod:`.admin` — operator CRUD;
* the worker's ``progress`` group (``worker/handlers/progress.py``) advances progress.
"""

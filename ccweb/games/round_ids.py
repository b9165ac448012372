"""Round ids allocated in blocks from the ``game_rounds`` sequence.

The id is needed before the settle statement (ledger keys, the event payload, the
response), and asking the sequence once per round would cost a round trip. A process
takes ``BLOCK`` ids at a time; ids stay unique, but are not in time order across
processes (order rounds by ``created_at``).
"""

from __future__ import annotations

import threading
from collections import deque

from sqlalchemy import text
from sqlalchemy.engine import Connection

BLOCK = 64
_ids: deque[int] = deque()
_lock = threading.Lock()


def discard() -> None:
    """Drop the ids this process holds (tests that restart sequences, restores)."""
    with _lock:
        _ids.clear()


def next_id(conn: Connection) -> int:
    with _lock:
        if not _ids:
            rows = conn.execute(
                text("SELECT nextval('game_rounds_id_seq') FROM generate_series(1, :n)"),
                {"n": BLOCK},
            ).scalars()
            _ids.extend(int(r) for r in rows)
        return _ids.popleft()

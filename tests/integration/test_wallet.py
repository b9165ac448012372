"""The one wallet ledger: idempotent, never negative, always explaining the balance."""

from __future__ import annotations

import ast
import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from ccweb.db import in_transaction
from ccweb.errors import InsufficientGold, NotFound
from ccweb.wallet import ledger
from tests.factories import balance, create_user, ledger_sum

ROOT = Path(__file__).resolve().parents[2]


def apply(user_id: int, delta: int, key: str) -> ledger.Settlement:
    return in_transaction(
        lambda s: ledger.apply(
            s, user_id=user_id, delta=delta, source_type="test", idempotency_key=key
        )
    )


def test_credit_and_debit_move_balance_and_ledger_together():
    user = create_user(gold=1000)
    r1 = apply(user["id"], -300, "k1")
    r2 = apply(user["id"], 50, "k2")
    assert (r1.balance, r2.balance) == (700, 750)
    assert not r1.replayed and not r2.replayed
    assert balance(user["id"]) == ledger_sum(user["id"]) == 750


def test_same_key_applies_once_and_replays_the_original():
    user = create_user(gold=1000)
    first = apply(user["id"], -100, "once")
    again = apply(user["id"], -100, "once")
    assert again.replayed and again.entry_id == first.entry_id and again.balance == 900
    assert balance(user["id"]) == 900


def test_insufficient_gold_writes_nothing():
    user = create_user(gold=100)
    with pytest.raises(InsufficientGold) as exc:
        apply(user["id"], -101, "too-much")
    assert exc.value.status == 409 and exc.value.code == "INSUFFICIENT_GOLD"
    assert exc.value.details == {"balance": 100, "required": 101}
    assert balance(user["id"]) == 100
    n = in_transaction(
        lambda s: s.execute(
            text("SELECT count(*) FROM wallet_ledger WHERE idempotency_key = 'too-much'")
        ).scalar()
    )
    assert n == 0


def test_unknown_user_and_bad_deltas():
    with pytest.raises(NotFound):
        apply(999_999, 10, "ghost")
    user = create_user()
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError):
            apply(user["id"], bad, f"bad-{bad}")  # type: ignore[arg-type]


def test_database_refuses_a_negative_balance_even_without_the_guard():
    """The CHECK constraint is the last line: a raw update below zero fails."""
    user = create_user(gold=10)
    with pytest.raises(Exception, match="ck_users_gold_non_negative"):
        in_transaction(
            lambda s: s.execute(
                text("UPDATE users SET gold_balance = -1 WHERE id = :u"), {"u": user["id"]}
            )
        )


def _hammer(n_threads: int, fn) -> list[object]:
    barrier = threading.Barrier(n_threads)
    results: list[object] = [None] * n_threads

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # collected and asserted on below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_sixty_concurrent_debits_never_go_negative():
    """60 threads each debit 100 from 1 000 gold: exactly 10 succeed, 50 get
    INSUFFICIENT_GOLD, the balance ends at 0 and equals the ledger sum."""
    user = create_user(gold=1000)
    results = _hammer(60, lambda i: apply(user["id"], -100, f"debit-{i}"))
    ok = [r for r in results if isinstance(r, ledger.Settlement)]
    short = [r for r in results if isinstance(r, InsufficientGold)]
    assert len(ok) == 10 and len(short) == 50, results
    assert sorted(r.balance for r in ok) == list(range(0, 1000, 100))
    assert balance(user["id"]) == 0 == ledger_sum(user["id"])
    assert (
        in_transaction(
            lambda s: s.execute(
                text("SELECT min(balance_after) FROM wallet_ledger WHERE user_id = :u"),
                {"u": user["id"]},
            ).scalar()
        )
        == 0
    )


def test_fifty_concurrent_uses_of_one_key_apply_once():
    user = create_user(gold=1000)
    results = _hammer(50, lambda i: apply(user["id"], -10, "same-key"))
    assert all(isinstance(r, ledger.Settlement) for r in results), results
    assert sum(not r.replayed for r in results) == 1  # type: ignore[union-attr]
    assert {r.balance for r in results} == {990}  # type: ignore[union-attr]
    assert balance(user["id"]) == 990 == ledger_sum(user["id"])


def _python_files() -> list[Path]:
    return [p for d in ("ccweb", "worker", "realtime") for p in (ROOT / d).rglob("*.py")]


def test_only_the_ledger_writes_gold_balance():
    """Any SQL or ORM code outside ccweb/wallet/ledger.py that assigns gold_balance fails
    this test (string literals with an UPDATE … gold_balance, or attribute assignment)."""
    sql_write = re.compile(
        r"(UPDATE\s+users\b[^;]*\bgold_balance\s*=)|"
        r"(INSERT\s+INTO\s+users\s*\([^)]*gold_balance)",
        re.I | re.S,
    )
    offenders = []
    for path in _python_files():
        if path == ROOT / "ccweb/wallet/ledger.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if sql_write.search(node.value):
                    offenders.append(f"{path}:{node.lineno} SQL")
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Attribute) and t.attr == "gold_balance":
                        offenders.append(f"{path}:{node.lineno} attribute")
            elif isinstance(node, ast.keyword) and node.arg == "gold_balance":
                offenders.append(f"{path}:{node.lineno} keyword")
    assert offenders == []
    # and the check really catches a write: the ledger itself is flagged
    ledger_src = (ROOT / "ccweb/wallet/ledger.py").read_text()
    assert sql_write.search(ledger_src)

"""kafka-python's wall-clock "slow task" warning is dropped; its other records are not."""

from __future__ import annotations

import logging

from ccweb.kafka.producer import quiet_slow_task_warnings

SLOW = (
    "Task <kafka.net.selector.Task object at 0x7f> ran for 0.161s (>0.100s threshold). "
    "It is blocking the event loop -- likely a tight sync loop inside a coroutine."
)


def test_only_the_slow_task_warning_is_dropped(caplog, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    quiet_slow_task_warnings()
    quiet_slow_task_warnings()  # idempotent: one filter, not two
    selector = logging.getLogger("kafka.net.selector")
    # the suite's alembic runs use fileConfig, which disables loggers that existed then
    monkeypatch.setattr(selector, "disabled", False)
    assert len(selector.filters) == 1
    with caplog.at_level(logging.WARNING):
        selector.warning(SLOW)
        selector.warning("Task %s left RUNNING after step; demoting to pending", "t1")
        selector.error("Unhandled exception in task t2:")
        logging.getLogger("ccweb.worker").warning(SLOW)  # another logger: untouched
    got = [(r.name, r.getMessage()) for r in caplog.records]
    assert ("kafka.net.selector", SLOW) not in got
    assert ("kafka.net.selector", "Task t1 left RUNNING after step; demoting to pending") in got
    assert ("kafka.net.selector", "Unhandled exception in task t2:") in got
    assert ("ccweb.worker", SLOW) in got

"""gunicorn configuration for ``bench/server_compare.py``: the gevent worker set up as
``python -m ccweb.server`` sets up its processes (psycogreen, the group flusher, the GC
tuning), so the comparison measures the servers and not a missing patch.

    gunicorn -c bench/gunicorn_conf.py -k gevent -w 2 --reuse-port -b 127.0.0.1:8000 \
        'ccweb:create_app()'
"""

from __future__ import annotations

from typing import Any

accesslog = None  # the app writes its own access log (CC_ACCESS_LOG)
worker_connections = 1000


def post_worker_init(worker: Any) -> None:
    # importing the entry point patches psycopg2 (psycogreen); gevent is already patched
    # by the gevent worker at this point
    from ccweb import redis_flush, server

    redis_flush.enable_group_flush()
    server.tune_gc()

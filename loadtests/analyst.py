"""The analyst: one operator refreshing the KPI screen while the players play.

``GET /api/admin/analytics/kpis`` over the last ``KPI_DAYS`` UTC days, as the admin
(``CC_ADMIN_PASSWORD``, dev default ``admin-pass-1234``), every 1–2 s. Exactly one such
user (``fixed_count``) whatever the player count: KPIs are an operator's screen, and its
p95 is the SPEC §5 KPI target. The locustfile includes it only when the server's
ClickHouse answers (``/ready``); otherwise the SLO table reports the KPI as SKIPPED.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

from loadtests import outcomes
from loadtests import targets as t

KPI_DAYS = 30
TOKEN_REUSE_S = 600.0  # access tokens live 15 min


class KpiAnalyst(FastHttpUser):
    fixed_count = 1
    wait_time = between(1, 2)
    network_timeout = 10.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.login()

    def login(self) -> None:
        password = os.environ.get("CC_ADMIN_PASSWORD", "admin-pass-1234")
        with self.client.post(
            t.ADMIN_LOGIN,
            json={"site_id": "admin", "password": password},
            name=t.ADMIN_LOGIN,
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}")
                raise StopUser()
            self.token = resp.json()["access_token"]
            self.token_until = time.monotonic() + TOKEN_REUSE_S

    @task
    def kpis(self) -> None:
        if time.monotonic() > self.token_until:
            self.login()
        today = datetime.now(UTC).date()
        query = f"?from={today - timedelta(days=KPI_DAYS - 1)}&to={today}"
        with self.client.get(
            t.KPIS + query,
            name=t.KPIS,
            headers={"Authorization": f"Bearer {self.token}"},
            catch_response=True,
        ) as resp:
            try:
                body = resp.json() if resp.content else None
            except ValueError:
                body = None
            problem = outcomes.verdict(t.KPIS, resp.status_code or 0, body)
            if problem:
                resp.failure(problem)
            else:
                resp.success()

"""Benchmark: shop purchases and catalog reads with 16 concurrent clients (issue 11, SPEC §3).

Runs wrk against the real server (`python -m ccweb.server`, `CC_WEB_PROCESSES` processes,
the worker beside it as in production) on a fresh database, for:

* buy        POST /api/shop/purchase of an unlimited-stock item, a new idempotency key
             per request (target p95 < 50 ms);
* buy-stock  the same for a limited item (stock 1 000 000): every purchase also takes the
             product row's lock to decrement the stock, so 16 buyers queue on one row;
* catalog    GET /api/shop/catalog, the cached copy (target p95 < 25 ms);
* catalog-304 the same with If-None-Match: the current ETag → 304, no body.

Every result is printed next to a same-run `GET /health` calibration (the box's speed
drifts by tens of percent between hours; compare runs by the ratio), and the money is
checked afterwards: the ledger explains every balance, every 200 is a purchase row with
its ledger debit and inventory grant, and the stock taken equals the limited purchases.

The velocity limit (CC_SHOP_VELOCITY_LIMIT purchases per CC_SHOP_VELOCITY_WINDOW_S per
player) stays as configured: the buyers cycle round-robin over ``--players`` players,
so at R purchases/s a player makes R·window/players attempts per window — the default
2 048 players stay under 10 per 10 s up to ~2 000 purchases/s (10 × faster than this
VM manages). A 429 counts as an error.

    make bench-shop      # or: scripts/with-services.sh .venv/bin/python -m bench.shop
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ensure_wrk, fresh_run, post_json, run_wrk_players, server
from bench.cpu_cost import cpu_seconds
from bench.play import pick_median

TARGET_BUY_P95, TARGET_CATALOG_P95 = 50.0, 25.0
PRICE = 1  # gold per purchase: the signup grant (1 000) funds every run many times over
ITEM, STOCK_ITEM = "bench_token", "bench_stock_token"
STOCK = 1_000_000

# One wrk script for purchases and catalog reads. Each wrk thread cycles round-robin over
# its own slice of the players (so a player's attempts are evenly spaced), a purchase
# carries a key no request ever used (run tag, thread, counter), and every answer is
# counted by status. The keys of the purchases answered 200 come back to the benchmark,
# which compares them with the purchase rows in the database.
LUA = r"""
local tokens = {}
for t in io.lines(os.getenv("BENCH_TOKEN_FILE")) do tokens[#tokens + 1] = t end
local path = os.getenv("BENCH_PATH")
local product = os.getenv("BENCH_PRODUCT")
local run = os.getenv("BENCH_RUN") or "r"
local etag = os.getenv("BENCH_ETAG")
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

function init(args)
  counter, ok, not_modified, limited, other = 0, 0, 0, 0, 0
  okkeys = {}
  mine = {}
  local n = tonumber(os.getenv("BENCH_THREADS") or "1")
  for i = 1, #tokens do
    if (i - 1) % n == id then mine[#mine + 1] = tokens[i] end
  end
end

function request()
  counter = counter + 1
  local headers = {["Authorization"] = "Bearer " .. mine[(counter % #mine) + 1]}
  if product then
    headers["Content-Type"] = "application/json"
    local body = string.format('{"product_id": %s, "idempotency_key": "%s-%d-%d"}',
      product, run, id, counter)
    return wrk.format("POST", path, headers, body)
  end
  if etag then headers["If-None-Match"] = etag end
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    if product then
      okkeys[#okkeys + 1] = string.match(body, '"idempotency_key": "([^"]+)"') or "?"
    end
  elseif status == 304 then not_modified = not_modified + 1
  elseif status == 429 then limited = limited + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local c = {ok = 0, not_modified = 0, limited = 0, other = 0, sent = 0}
  local keys = {}
  for _, t in ipairs(threads) do
    c.ok = c.ok + t:get("ok")
    c.not_modified = c.not_modified + t:get("not_modified")
    c.limited = c.limited + t:get("limited")
    c.other = c.other + t:get("other")
    c.sent = c.sent + t:get("counter")
    for _, k in ipairs(t:get("okkeys")) do keys[#keys + 1] = '"' .. k .. '"' end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f,'
    .. ' "ok": %d, "not_modified": %d, "rate_limited": %d, "other": %d, "sent": %d,'
    .. ' "socket_errors": %d, "ok_keys": [%s]}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, c.ok, c.not_modified,
    c.limited, c.other, c.sent, e.connect + e.read + e.write + e.timeout,
    table.concat(keys, ",")))
end
"""


def make_players(n: int, token_file: Path) -> None:
    """``n`` players with their signup grant, written to the database directly through the
    services the signup uses (the ledger grant, the token pair): 2 000 signups through
    the API would spend ~70 ms of argon2 each (over a minute of the run) on something
    this benchmark does not measure. One password hash serves them all; nobody logs in."""
    from sqlalchemy import text

    from ccweb.auth import tokens
    from ccweb.auth.passwords import hash_password
    from ccweb.auth.service import grant_signup_bonus
    from ccweb.db import in_transaction

    pw = hash_password("bench-pass-1")
    tag = uuid.uuid4().hex[:6]

    def tx(s: Any) -> list[str]:
        out = []
        for i in range(n):
            name = f"s{tag}{i}"
            uid = s.execute(
                text(
                    "INSERT INTO users (site_id, nickname, password_hash, invite_code)"
                    " VALUES (:s, :s, :p, '5858') RETURNING id"
                ),
                {"s": name, "p": pw},
            ).scalar_one()
            grant_signup_bonus(s, uid)
            out.append(tokens.issue_pair(s, uid, is_admin=False, tier="STANDARD").access_token)
        return out

    token_file.write_text("\n".join(in_transaction(tx)) + "\n")


def make_products(base: str) -> dict[str, int]:
    """Two bench items through the admin API: one unlimited, one with a large stock."""
    admin = post_json(
        base + "/api/auth/admin/login", {"site_id": "admin", "password": "admin-pass-1234"}
    )["access_token"]
    ids = {}
    for code, stock in ((ITEM, None), (STOCK_ITEM, STOCK)):
        ids[code] = post_json(
            base + "/api/admin/products",
            {
                "sku": code.replace("_", "-"),
                "name": f"Benchmark {code}",
                "category": "item",
                "price_gold": PRICE,
                "items": [{"code": code, "quantity": 1}],
                "stock": stock,
            },
            admin,
        )["id"]
    return ids


def run_shop(
    base: str,
    token_file: Path,
    *,
    path: str,
    connections: int,
    seconds: int,
    product: int | None = None,
    etag: str | None = None,
    threads: int = 2,
) -> dict[str, Any]:
    """One wrk run of :data:`LUA`; req/s, p50/p95/p99 (ms), counts by status and, for a
    purchase run, the keys answered 200."""
    env = {
        **os.environ,
        "BENCH_TOKEN_FILE": str(token_file),
        "BENCH_PATH": path,
        "BENCH_THREADS": str(threads),
        "BENCH_RUN": uuid.uuid4().hex[:8],
    }
    if product is not None:
        env["BENCH_PRODUCT"] = str(product)
    if etag is not None:
        env["BENCH_ETAG"] = etag
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA)
    try:
        out = subprocess.run(
            [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", f.name, base],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
    finally:
        os.unlink(f.name)
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    stats: dict[str, Any] = json.loads(line[len("BENCH ") :])
    stats["rps"] = stats["requests"] / stats["seconds"]
    good = stats["not_modified"] if etag is not None else stats["ok"]
    stats["errors"] = stats["requests"] - good + stats["socket_errors"]
    return stats


class CpuMeter:
    """CPU seconds of this run's own processes, read from /proc around a wrk run (the
    steady number on a shared box: other tenants add wall time, not these processes'
    CPU): the web processes and the worker this benchmark started, and the PostgreSQL
    backends connected to its database (pooled, so the same pids for the whole run)."""

    def __init__(self) -> None:
        import psycopg2

        self.conn = psycopg2.connect(os.environ["DATABASE_URL"])
        self.conn.autocommit = True

    def _pids(self) -> dict[str, list[int]]:
        parent: dict[int, int] = {}
        cmd: dict[int, str] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                    raw = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue  # exited while we looked
                parent[int(entry)] = int(stat[1])
                cmd[int(entry)] = raw.replace(b"\0", b" ").decode(errors="replace")

        def mine(pid: int) -> bool:
            while pid > 1:
                pid = parent.get(pid, 0)
                if pid == os.getpid():
                    return True
            return False

        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            )
            backends = [pid for (pid,) in cur.fetchall()]
        return {
            "web": [p for p in cmd if "-m ccweb.server" in cmd[p] and mine(p)],
            "postgres": backends,
            "worker": [p for p in cmd if "-m worker" in cmd[p] and mine(p)],
        }

    def snapshot(self) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for name, pids in self._pids().items():
            out[name] = {}
            for pid in pids:
                try:
                    out[name][pid] = cpu_seconds(pid)
                except OSError:
                    continue
        return out

    @staticmethod
    def per_request(
        before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], requests: int
    ) -> dict[str, float]:
        """CPU ms per request by role, over the pids seen at both ends."""
        return {
            name: 1000
            * sum(t - before[name][pid] for pid, t in after[name].items() if pid in before[name])
            / max(1, requests)
            for name in after
        }


def current_etag(base: str, token_file: Path) -> str:
    token = token_file.read_text().split("\n", 1)[0]
    req = urllib.request.Request(
        base + "/api/shop/catalog", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req) as resp:
        return str(resp.headers["ETag"])


def show(name: str, r: dict[str, Any], health: dict[str, Any], target: float) -> None:
    verdict = "PASS" if r["p95_ms"] < target and r["errors"] == 0 else "FAIL"
    print(
        f"  {name:<12}{r['rps']:7.0f} req/s  p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms"
        f"  p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}"
        f" (429: {r['rate_limited']}, other non-2xx: {r['other']}, socket: {r['socket_errors']})"
        f"   target p95 < {target:.0f} ms: {verdict}"
    )
    print(
        f"  {'':<12}vs this run's /health: {r['rps'] / health['rps']:.3f}x req/s,"
        f" p95 {r['p95_ms'] / health['p95_ms']:.1f}x;  CPU ms per request: "
        + ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_ms"].items())
    )
    if len(r.get("all_p95", ())) > 1:
        print(f"  {'':<12}median of {len(r['all_p95'])} runs; p95 of each run: {r['all_p95']} ms")


def verify(buys: list[dict[str, Any]], products: dict[str, int]) -> bool:
    """The money after the run: every balance explained by the ledger, every purchase
    answered 200 present with its debit and its item, the stock taken = limited sales."""
    import psycopg2

    conn = psycopg2.connect(os.environ["DATABASE_URL"])
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "SELECT (SELECT coalesce(sum(delta_gold), 0) FROM wallet_ledger),"
            " (SELECT coalesce(sum(gold_balance), 0) FROM users),"
            " (SELECT count(*) FROM users u WHERE gold_balance <> (SELECT coalesce(sum("
            "  delta_gold), 0) FROM wallet_ledger l WHERE l.user_id = u.id))"
        )
        ledger_sum, balance_sum, mismatched = cur.fetchone()
        cur.execute(
            "SELECT idempotency_key FROM shop_purchases WHERE product_id = ANY(%s)"
            " AND status = 'success'",
            (list(products.values()),),
        )
        stored = {k for (k,) in cur.fetchall()}
        cur.execute(
            "SELECT count(*), coalesce(-sum(delta_gold), 0) FROM wallet_ledger"
            " WHERE source_type = 'shop_purchase'"
        )
        debits, debited = cur.fetchone()
        cur.execute(
            "SELECT coalesce(sum(quantity), 0) FROM user_items WHERE item_code IN (%s, %s)",
            (ITEM, STOCK_ITEM),
        )
        (items,) = cur.fetchone()
        cur.execute(
            "SELECT stock_total - stock_remaining FROM shop_products WHERE id = %s",
            (products[STOCK_ITEM],),
        )
        (stock_taken,) = cur.fetchone()
        cur.execute(
            "SELECT count(*) FROM shop_purchases WHERE product_id = %s",
            (products[STOCK_ITEM],),
        )
        (stock_sales,) = cur.fetchone()
    conn.close()
    answered = {k for r in buys for k in r["ok_keys"]}
    ok = sum(r["ok"] for r in buys)
    in_flight = stored - answered  # committed while wrk stopped; their answer was not read
    checks = {
        "sum(ledger) = sum(balances)": ledger_sum == balance_sum,
        "every balance = its ledger sum": mismatched == 0,
        "every 200 is a purchase row": len(answered) == ok and answered <= stored,
        "unanswered purchases <= one per connection per run": len(in_flight)
        <= sum(r["connections"] for r in buys),
        "one debit of the price per purchase": debits == len(stored)
        and debited == PRICE * len(stored),
        "one item per purchase": items == len(stored),
        "stock taken = limited purchases": stock_taken == stock_sales,
    }
    print(
        f"  money: sum(ledger) {ledger_sum} = sum(balances) {balance_sum};"
        f" users whose balance differs from their ledger: {mismatched}"
    )
    print(
        f"  purchases: {ok} answered 200 + {len(in_flight)} committed while wrk stopped"
        f" (answer never read) = {len(stored)} rows; {debits} debit rows ({debited} gold),"
        f" {items} items granted; stock taken {stock_taken} = {stock_sales} limited purchases"
    )
    for name, good in checks.items():
        print(f"    {'ok  ' if good else 'FAIL'} {name}")
    return all(checks.values())


def main() -> None:
    from ccweb.config import get_settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20, help="per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--players", type=int, default=2048, help="buyers rotate over these")
    parser.add_argument("--processes", type=int, default=2, help="CC_WEB_PROCESSES")
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario (median)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-shop-"))
    token_file = workdir / "tokens"
    make_players(args.players, token_file)
    c, secs = args.connections, args.seconds
    with server({"CC_WEB_PROCESSES": str(args.processes)}, worker=True) as base:
        products = make_products(base)
        meter = CpuMeter()
        buys: list[dict[str, Any]] = []

        def measured(once: Callable[[], dict[str, Any]], repeat: int = 1) -> dict[str, Any]:
            runs = []
            for _ in range(max(1, repeat)):
                before = meter.snapshot()
                r = once()
                r["cpu_ms"] = meter.per_request(before, meter.snapshot(), r["requests"])
                runs.append(r)
            return pick_median(runs)

        def buy(code: str, seconds: int) -> dict[str, Any]:
            r = run_shop(
                base,
                token_file,
                path="/api/shop/purchase",
                product=products[code],
                connections=c,
                seconds=seconds,
            )
            r["connections"] = c
            buys.append(r)
            return r

        buy(ITEM, 2)  # warm-up (connection pools, prepared statements, the catalog copy)
        print(
            f"{c} connections, {args.players} players, {args.processes} web process(es)"
            f" + worker, wrk -t2, {secs}s per scenario"
        )
        tokens = token_file.read_text().split()[:64]
        health = measured(
            lambda: run_wrk_players(
                base, tokens, method="GET", path="/health", connections=c, seconds=5
            )
        )
        print(
            f"  calibration: GET /health {health['rps']:.0f} req/s, p95 {health['p95_ms']:.1f} ms;"
            f" CPU ms per request: web {health['cpu_ms']['web']:.3f}"
        )
        unlimited = measured(lambda: buy(ITEM, secs), args.repeat)
        show("buy", unlimited, health, TARGET_BUY_P95)
        limited = measured(lambda: buy(STOCK_ITEM, secs), args.repeat)
        show("buy-stock", limited, health, TARGET_BUY_P95)
        s = get_settings()
        peak = max(unlimited["rps"], limited["rps"])
        print(
            f"  {'':<12}each player made ~{peak * s.shop_velocity_window_s / args.players:.1f}"
            f" purchases per {s.shop_velocity_window_s} s window"
            f" (limit {s.shop_velocity_limit}, unchanged)"
        )
        path = "/api/shop/catalog"
        read = measured(
            lambda: run_shop(base, token_file, path=path, connections=c, seconds=secs),
            args.repeat,
        )
        show("catalog", read, health, TARGET_CATALOG_P95)
        etag = current_etag(base, token_file)
        cached = measured(
            lambda: run_shop(base, token_file, path=path, connections=c, seconds=secs, etag=etag),
            args.repeat,
        )
        show("catalog-304", cached, health, TARGET_CATALOG_P95)
        good = verify(buys, products)
        meter.conn.close()
    for p in workdir.iterdir():
        p.unlink()
    workdir.rmdir()
    if not good:
        raise SystemExit("bench-shop: the money check failed")


if __name__ == "__main__":
    with fresh_run():
        main()

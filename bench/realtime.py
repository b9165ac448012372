"""Benchmark: commit → WebSocket delivery with many sockets on ONE web process (SPEC §5:
p95 < 100 ms), the server's memory per connection, and where p95 crosses 100 ms.

Starts the real server (``CC_WEB_PROCESSES=1``) and worker on a fresh database, signs up
``--players`` players, and opens sockets in steps (``--steps``, spread evenly over the
players: several sockets per player, as tabs and devices would). At each step the
players spin at a steady ``--rate`` spins/s for ``--seconds``; every ``stats_update``
received is timed from its ``timestamp`` (the event's time, taken inside the committing
transaction) to its arrival at the client — request commit, fast-path publish, worker
``realtime`` group, Redis pub/sub, hub, socket. The client is one gevent process; its own
delay is included (an upper bound on the server's).

    scripts/with-services.sh .venv/bin/python -m bench.realtime [--steps 250,500,1000,2000]

Memory: the web process's RSS after each step minus its RSS with no socket open, divided
by the sockets open. File descriptors: flask-sock duplicates each socket (2 per
connection, PERFORMANCE.md trap 3), so the script raises ``ulimit -n`` first.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
import websocket  # noqa: E402

from bench.common import fresh_run, new_player, server  # noqa: E402

TARGET_P95_MS = 100.0


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def server_pid(port: int) -> int:
    out = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split("pid=", 1)[1].split(",", 1)[0])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Clients:
    """Sockets and what they measured."""

    def __init__(self, ws_base: str) -> None:
        self.ws_base = ws_base
        self.latencies: list[float] = []
        self.recording = False
        self.open = 0
        self.errors = 0

    def connect(self, token: str) -> None:
        def run() -> None:
            try:
                ws = websocket.create_connection(f"{self.ws_base}?token={token}", timeout=60)
            except Exception:
                self.errors += 1
                return
            self.open += 1
            try:
                ws.settimeout(None)
                while True:
                    text = ws.recv()
                    if not text:
                        break
                    if self.recording and '"type":"stats_update"' in text:
                        ts = json.loads(text)["timestamp"]
                        sent = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
                        self.latencies.append((time.time() - sent) * 1000)
            except Exception:
                pass
            finally:
                self.open -= 1

        gevent.spawn(run)


def spin_at_rate(base: str, tokens: list[str], rate: float, seconds: float) -> int:
    """Spins spread over the players at ``rate`` per second; returns how many were made."""
    host = urlsplit(base)
    done = [0]

    def one(token: str) -> None:
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
        try:
            conn.request(
                "POST",
                "/api/games/slot/spin",
                body=b'{"bet":100}',
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                    "X-Idempotency-Key": uuid.uuid4().hex,
                },
            )
            if conn.getresponse().status == 200:
                done[0] += 1
        finally:
            conn.close()

    start = time.monotonic()
    n = 0
    jobs = []
    while time.monotonic() - start < seconds:
        due = start + n / rate
        gevent.sleep(max(0.0, due - time.monotonic()))
        jobs.append(gevent.spawn(one, tokens[n % len(tokens)]))
        n += 1
    gevent.joinall(jobs, timeout=10)
    return done[0]


def server_buckets(base: str) -> dict[float, float]:
    """The server's ``cc_realtime_push_latency_seconds`` cumulative buckets (le → count)."""
    host = urlsplit(base)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("cc_realtime_push_latency_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(le)] = float(line.split()[-1])
    return out


def bucket_pct(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """Upper bound (ms) of the bucket holding quantile ``q`` of what was observed between
    two scrapes: the server's own view (event time → handed to the socket)."""
    delta = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = delta[-1][1] if delta else 0.0
    for le, count in delta:
        if total and count >= q * total:
            return le * 1000
    return float("nan")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--players", type=int, default=100)
    parser.add_argument("--steps", default="250,500,1000,2000")
    parser.add_argument("--rate", type=float, default=50.0, help="spins per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    limit = raise_fd_limit()
    print(f"ulimit -n {limit}; one web process; {args.players} players spinning {args.rate}/s")
    with (
        fresh_run(),
        server({"CC_WEB_PROCESSES": "1", "CC_WS_QUEUE_SIZE": "1024"}, worker=True) as base,
    ):
        port = int(base.rsplit(":", 1)[1])
        pid = server_pid(port)
        tokens = [new_player(base)["access_token"] for _ in range(args.players)]
        clients = Clients(f"ws://127.0.0.1:{port}/api/realtime/sync")
        gevent.sleep(1)
        base_rss = rss_kib(pid)
        print(f"web process RSS with no socket: {base_rss / 1024:.1f} MiB")
        print(
            " sockets  delivered  p50 ms  p95 ms  p99 ms  KiB/socket  spins/s"
            "  server p50/p95 ≤ ms (bucket bounds)"
        )
        crossed = None
        for target in steps:
            while clients.open + clients.errors < target:
                for _ in range(min(50, target - clients.open - clients.errors)):
                    clients.connect(tokens[(clients.open + clients.errors) % len(tokens)])
                gevent.sleep(0.2)
            gevent.sleep(2)  # openings done
            per_socket = (rss_kib(pid) - base_rss) / max(1, clients.open)
            clients.latencies = []
            before = server_buckets(base)
            clients.recording = True
            spins = spin_at_rate(base, tokens, args.rate, args.seconds)
            gevent.sleep(1)
            clients.recording = False
            after = server_buckets(base)
            lat = clients.latencies
            p95 = pct(lat, 0.95)
            print(
                f" {clients.open:7d}  {len(lat):9d}  {pct(lat, 0.5):6.1f}  {p95:6.1f}"
                f"  {pct(lat, 0.99):6.1f}  {per_socket:10.1f}  {spins / args.seconds:7.1f}"
                f"  {bucket_pct(before, after, 0.5):.0f}/{bucket_pct(before, after, 0.95):.0f}"
                + (f"   ({clients.errors} failed to connect)" if clients.errors else "")
            )
            if crossed is None and p95 >= TARGET_P95_MS:
                crossed = clients.open
        print(
            f"p95 crossed {TARGET_P95_MS:.0f} ms at {crossed} sockets"
            if crossed
            else f"p95 stayed under {TARGET_P95_MS:.0f} ms up to {clients.open} sockets"
        )


if __name__ == "__main__":
    main()

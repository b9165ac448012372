"""Looking inside a running pre-fork web server from a test: its web processes, and which
of them holds a given client connection.

Why: the pre-fork server gives every web process its own SO_REUSEPORT socket and the
kernel picks the process per connection, so a test that must reach *every* process (the
metrics totals) or must tell which connections a killed process held (the fault tests)
cannot choose; it opens connections and asks the kernel afterwards. A connection's
server end is a socket inode in ``/proc/net/tcp``; the process that has that inode among
its file descriptors is the one that accepted it.
"""

from __future__ import annotations

import http.client
import os
import socket
from pathlib import Path


def children_of(pid: int) -> set[int]:
    """The live (not zombie) child processes of ``pid``."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    if not path.exists():
        return set()
    return {int(p) for p in path.read_text().split() if alive(int(p))}


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (a killed child its parent has not reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _server_inode(client_port: int, server_port: int) -> int | None:
    """The inode of the server end of the TCP connection from ``client_port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
                and inode
            ):
                return inode
    return None


def owner(sock: socket.socket, candidates: set[int]) -> int | None:
    """Which of ``candidates`` (web process ids) accepted the connection of ``sock``;
    None if none of them holds it (not accepted yet, or already closed)."""
    client_port = sock.getsockname()[1]
    server_port = sock.getpeername()[1]
    inode = _server_inode(client_port, server_port)
    if inode is None:
        return None
    want = f"socket:[{inode}]"
    for pid in candidates:
        fd_dir = f"/proc/{pid}/fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in names:
            try:
                if os.readlink(f"{fd_dir}/{fd}") == want:
                    return pid
            except OSError:
                continue
    return None


def get_on_fresh_connection(
    port: int, path: str, candidates: set[int], headers: dict[str, str] | None = None
) -> tuple[int | None, int, bytes]:
    """GET ``path`` on a new connection; returns (the web process that answered, the
    status, the body). The connection is still open when its owner is looked up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        assert conn.sock is not None
        return owner(conn.sock, candidates), resp.status, body
    finally:
        conn.close()


def wait_until_each_serves(port: int, pids: set[int], attempts: int = 400) -> None:
    """GET /health on fresh connections until every one of ``pids`` has answered one: a
    forked web process takes a moment to build its app and install its signal handlers."""
    seen: set[int | None] = set()
    for _ in range(attempts):
        who, status, _ = get_on_fresh_connection(port, "/health", pids)
        assert status == 200
        seen.add(who)
        if pids <= seen:
            return
    raise AssertionError(f"only {seen} of {pids} answered")

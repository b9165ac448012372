"""ccweb.http.request_headers: what gevent's pywsgi reads from it."""

from __future__ import annotations

import io

from ccweb.http.request_headers import MAX_HEADERS, RequestHeaders


def parse(raw: bytes) -> RequestHeaders:
    return RequestHeaders(io.BufferedReader(io.BytesIO(raw)), 0)


def test_names_are_case_insensitive_and_the_first_value_wins():
    h = parse(b"Content-Type: application/json\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody")
    assert h.status == ""
    assert h.get("content-type") == "application/json" == h.typeheader
    assert h.getheader("X-A") == "1" and h.get("missing", "d") == "d"
    assert list(h.headers) == ["Content-Type: application/json\r\n", "X-A: 1\r\n", "x-a: 2\r\n"]


def test_folded_lines_stay_with_their_header_and_del_removes_every_copy():
    h = parse(b"X-Long: one\r\n\ttwo\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n")
    assert h.get("x-long") == "one\r\n\ttwo"
    del h["Content-Length"]
    assert h.get("content-length") is None
    assert list(h.headers) == ["X-Long: one\r\n\ttwo\r\n"]


def test_malformed_blocks_set_a_status_for_a_400():
    assert parse(b"no colon\r\n\r\n").status
    assert parse(b" leading continuation\r\n\r\n").status
    assert parse(b"Name : spaced\r\n\r\n").status
    assert parse(b"X: " + b"a" * 70_000 + b"\r\n\r\n").status == "Line too long"
    many = b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS + 1)) + b"\r\n"
    assert parse(many).status == "Too many headers"
    assert parse(b"X-Ok: v\r\n\r\n").status == ""
    assert parse(b"").status == ""  # end of stream: no headers

"""A lean request-header reader for gevent's ``pywsgi`` (``WSGIHandler.MessageClass``).

pywsgi parses every request's headers with ``http.client.parse_headers``, i.e. the
``email`` package's feed parser: ~5 % of a spin's web CPU for a handful of lines. This
reads the same lines and offers exactly what pywsgi uses (``status``, ``get``,
``getheader``, ``typeheader``, ``headers`` and ``del``), with the same limits (65 536
bytes a line, 100 lines). It is stricter than the email parser in one way: a line that
is neither ``Name: value`` nor a continuation makes the request a 400 instead of being
silently dropped, as h11 and most production HTTP servers do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MAX_LINE = 65_536
MAX_HEADERS = 100


class RequestHeaders:
    __slots__ = ("_items", "status")

    def __init__(self, fp: Any, *_: Any) -> None:
        self.status = ""
        self._items: list[list[str]] = []  # [name, value] in arrival order
        while True:
            raw = fp.readline(MAX_LINE + 1)
            if len(raw) > MAX_LINE:
                self.status = "Line too long"
                return
            if raw in (b"\r\n", b"\n", b""):
                return
            line = raw.decode("latin-1").rstrip("\r\n")
            if line[:1] in (" ", "\t"):
                if not self._items:
                    self.status = "Continuation line before any header"
                    return
                self._items[-1][1] += "\r\n" + line  # as the email parser keeps folds
                continue
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                self.status = "Invalid header line"
                return
            if len(self._items) >= MAX_HEADERS:
                self.status = "Too many headers"
                return
            self._items.append([name, value.lstrip(" \t")])

    def get(self, name: str, default: Any = None) -> Any:
        wanted = name.lower()
        for key, value in self._items:
            if key.lower() == wanted:
                return value
        return default

    getheader = get

    def __delitem__(self, name: str) -> None:
        wanted = name.lower()
        self._items = [item for item in self._items if item[0].lower() != wanted]

    @property
    def typeheader(self) -> str | None:
        value: str | None = self.get("content-type")
        return value

    @property
    def headers(self) -> Iterator[str]:
        """Header lines as pywsgi's ``get_environ`` reads them."""
        for key, value in self._items:
            yield f"{key}: {value}\r\n"

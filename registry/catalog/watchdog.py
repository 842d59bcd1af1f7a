"""A client-side deadline for catalog calls on PostgreSQL.

A server that is frozen (SIGSTOP, a hung VM, a network that drops packets) never answers, and neither libpq
nor TCP keep-alives notice: the kernel of a stopped server still acknowledges every packet. So each catalog
call runs under a deadline (``Catalog(timeout_s=...)``: trtbuild's ``TRTBUILD_DB_TIMEOUT``, default 30 s).
When it passes, the sockets of the connections the calling thread holds are shut down: the blocked call
fails at once with a connection error, which the catalog reports as "did not answer within N s". New
connections are bounded by libpq's ``connect_timeout`` (at most 10 s); a live server also enforces the same
``statement_timeout`` itself.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

DEFAULT_TIMEOUT_S = 30.0  # trtbuild passes TRTBUILD_DB_TIMEOUT (trtbuild.settings)


class Expired(Exception):
    """Raised on checkout of a connection by a thread whose call is already past its deadline."""


def cut(dbapi_conn: Any) -> None:
    """Shut down the socket of a DB-API connection (psycopg: ``fileno()``) without closing its descriptor."""
    try:
        fd = dbapi_conn.fileno()
    except Exception:  # noqa: BLE001 - already closed: nothing to cut
        return
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


class Watchdog:
    """Deadlines per thread (the outermost catalog call) and the pooled connections each thread holds."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._cond = threading.Condition()
        self._deadline: dict[int, float] = {}  # thread -> monotonic deadline of its outermost call
        self._depth: dict[int, int] = {}
        self._expired: set[int] = set()
        self._held: dict[Any, int] = {}  # pool connection record -> thread holding it
        self._thread: threading.Thread | None = None

    # -- pool events -------------------------------------------------------------------------------------
    def checkout(self, record: Any) -> None:
        tid = threading.get_ident()
        with self._cond:
            self._held[record] = tid
            expired = tid in self._expired and self._depth.get(tid, 0) > 0
        if expired:
            raise Expired(f"no answer within {self.timeout_s:g} s")

    def checkin(self, record: Any) -> None:
        with self._cond:
            self._held.pop(record, None)

    # -- calls -------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def deadline(self) -> Iterator[None]:
        """Bound the enclosed catalog call (nested calls share the outermost deadline)."""
        tid = threading.get_ident()
        with self._cond:
            depth = self._depth.get(tid, 0)
            self._depth[tid] = depth + 1
            if depth == 0:
                self._expired.discard(tid)
                self._deadline[tid] = time.monotonic() + self.timeout_s
                self._start()
                self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._depth[tid] -= 1
                if self._depth[tid] == 0:
                    del self._depth[tid]
                    self._deadline.pop(tid, None)

    @contextlib.contextmanager
    def extended(self, seconds: float) -> Iterator[None]:
        """Within the current call, allow ``seconds`` for the enclosed work (a schema upgrade); the call
        then gets a fresh budget of ``timeout_s`` for what follows."""
        tid = threading.get_ident()
        with self._cond:
            if tid in self._deadline:
                self._deadline[tid] = time.monotonic() + seconds
                self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                if tid in self._deadline:
                    self._deadline[tid] = time.monotonic() + self.timeout_s
                    self._cond.notify()

    def expired(self) -> bool:
        """The calling thread's current (or just finished) call ran past its deadline."""
        return threading.get_ident() in self._expired

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="catalog-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [tid for tid, t in self._deadline.items() if t <= now]
                for tid in due:
                    del self._deadline[tid]
                    self._expired.add(tid)
                victims = [rec for rec, tid in self._held.items() if tid in due]
                if not due:
                    wait = min(self._deadline.values(), default=now + 3600) - now
                    self._cond.wait(max(wait, 0.01))
                    continue
            for rec in victims:
                conn = getattr(rec, "dbapi_connection", None)
                if conn is not None:
                    cut(conn)

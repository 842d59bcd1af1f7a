"""A best-effort cache of file digests keyed by (path, device, inode, size, mtime_ns, ctime_ns).

Lets a re-push skip reading files that did not change (like git's index). Stored in one SQLite file (stdlib
sqlite3) whose path the registry's user gives; no path means no cache. Any error makes it a miss, never a
failure.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


class HashCache:
    def __init__(self, path: Path | None = None) -> None:
        self._conn: sqlite3.Connection | None = None
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, dev INT, ino INT, size INT,"
                " mtime_ns INT, ctime_ns INT, sha256 TEXT)"
            )
            self._conn = conn
        except (sqlite3.Error, OSError):
            self._conn = None

    @staticmethod
    def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    def get(self, path: Path, st: os.stat_result) -> str | None:
        if self._conn is None:
            return None
        try:
            row = self._conn.execute(
                "SELECT dev, ino, size, mtime_ns, ctime_ns, sha256 FROM files WHERE path=?", (str(path),)
            ).fetchone()
        except sqlite3.Error:
            return None
        return row[5] if row and tuple(row[:5]) == self._key(st) else None

    def put(self, path: Path, st: os.stat_result, sha256: str) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(
                "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)", (str(path), *self._key(st), sha256)
            )
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

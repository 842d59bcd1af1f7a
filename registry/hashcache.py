"""A best-effort cache of file digests keyed by (path, device, inode, size, mtime_ns, ctime_ns).

Holds each file's sha256 and, for files larger than one chunk, its chunk digests (``registry.hashing``).

Lets a re-push skip reading files that did not change (like git's index). Stored in one SQLite file (stdlib
sqlite3) whose path the registry's user gives; no path means no cache. Any error makes it a miss, never a
failure.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from registry.hashing import CHUNK_SIZE, FileDigest


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
            conn.execute(
                "CREATE TABLE IF NOT EXISTS chunks (path TEXT PRIMARY KEY, dev INT, ino INT, size INT,"
                " mtime_ns INT, ctime_ns INT, chunk_size INT, digests TEXT)"
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

    def get_digest(self, path: Path, st: os.stat_result) -> FileDigest | None:
        """The file's sha256 and (for a file larger than one chunk) its chunk digests, or None."""
        sha = self.get(path, st)
        if sha is None or st.st_size <= CHUNK_SIZE:
            return None if sha is None else FileDigest(sha, st.st_size)
        try:
            row = self._conn.execute(  # type: ignore[union-attr]
                "SELECT dev, ino, size, mtime_ns, ctime_ns, chunk_size, digests FROM chunks WHERE path=?",
                (str(path),),
            ).fetchone()
        except sqlite3.Error:
            return None
        if not row or tuple(row[:5]) != self._key(st) or row[5] != CHUNK_SIZE:
            return None
        chunks = tuple(row[6][i : i + 64] for i in range(0, len(row[6]), 64))
        return FileDigest(sha, st.st_size, chunks)

    def put_digest(self, path: Path, st: os.stat_result, digest: FileDigest) -> None:
        self.put(path, st, digest.sha256)
        if self._conn is None or not digest.chunks:
            return
        try:
            self._conn.execute(
                "INSERT OR REPLACE INTO chunks VALUES (?,?,?,?,?,?,?,?)",
                (str(path), *self._key(st), CHUNK_SIZE, "".join(digest.chunks)),
            )
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

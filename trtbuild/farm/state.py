"""The farm's job table: which scheduler job builds which engine key.

A small JSON file (``$TRTBUILD_FARM_STATE``, default ``<cache>/farm/state.json``; put it on storage the
submitting machines share). It only maps keys to job ids: what a job is doing is asked of the scheduler,
and whether a key is built is asked of the registry, so a lost or stale table costs nothing but the
link to old logs. Updates hold an exclusive lock on ``state.json.lock`` and replace the file atomically.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trtbuild.errors import InputError

STATE_VERSION = 1


@dataclass
class JobRecord:
    """The latest job of one engine key (earlier job ids of the key in ``previous``)."""

    engine_key: str
    recipe: str
    name: str
    scheduler: str  # "slurm" | "kubernetes"
    job_id: str
    submitted_at: float
    log: str | None = None
    previous: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def load(path: Path) -> dict[str, JobRecord]:
    """engine key -> record ({} when the file does not exist yet)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{path}: unreadable farm state ({exc})",
            hint="fix or remove it (it maps keys to job ids; the registry keeps what was built)",
        ) from exc
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise InputError(f"{path}: not a farm state file of version {STATE_VERSION}")
    try:
        return {key: JobRecord(**rec) for key, rec in data.get("jobs", {}).items()}
    except TypeError as exc:
        raise InputError(f"{path}: malformed job record ({exc})") from exc


def _save(path: Path, records: dict[str, JobRecord]) -> None:
    body = {"version": STATE_VERSION, "jobs": {k: r.to_dict() for k, r in sorted(records.items())}}
    fd, tmp = tempfile.mkstemp(prefix=".state-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(body, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def locked(path: Path, *, save_on_error: bool = False) -> Iterator[dict[str, JobRecord]]:
    """Load the table under an exclusive lock, let the caller change it, save it on a clean exit (and on
    an error or interrupt too with ``save_on_error``: jobs a scheduler already accepted stay recorded)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = load(path)
        try:
            yield records
        except BaseException:
            if save_on_error:
                _save(path, records)
            raise
        _save(path, records)


def record(
    records: dict[str, JobRecord],
    *,
    engine_key: str,
    recipe: str,
    name: str,
    scheduler: str,
    job_id: str,
    log: str | None,
) -> JobRecord:
    """Put a new job of ``engine_key`` in the table, keeping the ids of the key's earlier jobs."""
    old = records.get(engine_key)
    previous = [*old.previous, old.job_id] if old is not None else []
    rec = JobRecord(engine_key, recipe, name, scheduler, job_id, time.time(), log, previous)
    records[engine_key] = rec
    return rec

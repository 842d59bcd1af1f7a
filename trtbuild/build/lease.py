"""Build leases: builders of one key on any number of machines build it once.

A lease is a catalog row (build_key, holder, expires_at). The holder renews it from a background thread
while it works; a crashed builder stops renewing, its lease expires and the next builder takes over. A
builder that finds the lease taken waits, polling for the artifact the holder publishes.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from trtbuild.errors import TrtbuildError


class LeaseStore(Protocol):
    def acquire_lease(self, build_key: str, holder: str, ttl_s: float) -> bool: ...
    def renew_lease(self, build_key: str, holder: str, ttl_s: float) -> bool: ...
    def release_lease(self, build_key: str, holder: str) -> None: ...


def holder_id() -> str:
    """host:pid:random — unique per builder process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    """Holds a lease and renews it every ``ttl_s / 3`` seconds until released."""

    def __init__(self, store: LeaseStore, build_key: str, holder: str, ttl_s: float) -> None:
        self.store, self.build_key, self.holder, self.ttl_s = store, build_key, holder, ttl_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def start(self) -> LeaseKeeper:
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self.build_key[:15]}", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not self.store.renew_lease(self.build_key, self.holder, self.ttl_s):
                    self.lost = True
            except Exception:  # a transient catalog error: try again next tick; expiry is the backstop
                continue

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.release_lease(self.build_key, self.holder)


def acquire_or_wait(
    store: LeaseStore,
    build_key: str,
    holder: str,
    *,
    ttl_s: float,
    timeout_s: float,
    poll_s: float,
    find: Callable[[], Any | None],
    on_wait: Callable[[str], None] = lambda message: None,
) -> tuple[Any | None, bool]:
    """(artifact, waited): take the lease on ``build_key`` and return (None, waited); or, while another
    builder holds it, return what ``find`` finds once that builder has published it."""
    waited = False
    deadline = time.monotonic() + timeout_s
    while not store.acquire_lease(build_key, holder, ttl_s):
        waited = True
        if time.monotonic() > deadline:
            raise TrtbuildError(
                f"gave up waiting for another builder of {build_key}",
                hint="check `trtbuild ls`; the other build may be stuck (its lease expires)",
            )
        on_wait("another builder holds the lease for this engine key; waiting")
        time.sleep(poll_s)
        found = find()
        if found is not None:
            return found, waited
    return None, waited


@contextmanager
def held_or_found(
    store: LeaseStore,
    key: str,
    *,
    ttl_s: float,
    timeout_s: float,
    poll_s: float,
    find: Callable[[], Any | None],
    on_wait: Callable[[str], None] = lambda message: None,
) -> Iterator[Any | None]:
    """Yield what ``find`` finds under ``key`` (published by another builder, before or while we waited),
    or None while this process holds the lease on ``key`` (renewed until the block ends): then make it.

    For what several build keys share (a checkpoint under many engine keys): without it, two builders of
    different engines would both make the checkpoint, in one work directory on a shared host.
    """
    found = find()
    if found is not None:
        yield found
        return
    holder = holder_id()
    found, _ = acquire_or_wait(
        store, key, holder, ttl_s=ttl_s, timeout_s=timeout_s, poll_s=poll_s, find=find, on_wait=on_wait
    )
    if found is not None:
        yield found
        return
    keeper = LeaseKeeper(store, key, holder, ttl_s).start()
    try:
        yield find()  # published between our first look and taking the lease
    finally:
        keeper.release()

"""Per-chunk digests, resumed pulls that re-verify, legacy (v1) manifests, and interrupts (both backends)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from registry import manifest as mf
from registry import transfer
from registry.errors import IntegrityError, UnsafeManifest
from registry.hashing import CHUNK_SIZE, WRITE_PIECE, FileDigest, Verifier, digest_file, pwrite_all, write_all
from tests.registry.conftest import ENGINE_META, Backend, make_engine

BIG = 2 * CHUNK_SIZE + 12345  # three chunks, the last one short


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _partial(dest: Path, hash_: str) -> Path:
    return dest.parent / f".{dest.name}.trtbuild-{hash_[7:23]}.partial"


def test_digest_file_chunks_match_their_bytes(tmp_path: Path) -> None:
    src = make_engine(tmp_path / "e", {"big": BIG, "small": 1000})
    d = digest_file(src / "big")
    data = (src / "big").read_bytes()
    import hashlib

    assert d.sha256 == hashlib.sha256(data).hexdigest() and d.size == BIG and len(d.chunks) == 3
    assert d.chunks[2] == hashlib.sha256(data[2 * CHUNK_SIZE :]).hexdigest()
    assert digest_file(src / "small") == FileDigest(
        hashlib.sha256(b"" + (src / "small").read_bytes()).hexdigest(), 1000
    )


def test_writes_go_in_small_pieces_and_land_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_all / pwrite_all put every byte at its place in write(2) calls of at most WRITE_PIECE bytes
    (large writes cost seconds of kernel CPU per GiB on a ballooned VM: bench/registry/RESULTS.md), also
    when the kernel writes short."""
    data = os.urandom(3 * WRITE_PIECE + 777)
    sizes: list[int] = []
    real_write, real_pwrite = os.write, os.pwrite

    def short_write(fd: int, buf: memoryview) -> int:
        sizes.append(len(buf))
        return real_write(fd, buf[: max(1, len(buf) - 5)])

    def short_pwrite(fd: int, buf: memoryview, off: int) -> int:
        sizes.append(len(buf))
        return real_pwrite(fd, buf[: max(1, len(buf) - 5)], off)

    monkeypatch.setattr(os, "write", short_write)
    monkeypatch.setattr(os, "pwrite", short_pwrite)
    a, b = tmp_path / "a", tmp_path / "b"
    fd = os.open(a, os.O_WRONLY | os.O_CREAT)
    try:
        write_all(fd, memoryview(data))
    finally:
        os.close(fd)
    fd = os.open(b, os.O_WRONLY | os.O_CREAT)
    try:
        pwrite_all(fd, data, 1000)
    finally:
        os.close(fd)
    assert a.read_bytes() == data
    assert b.read_bytes() == bytes(1000) + data
    assert sizes and max(sizes) == WRITE_PIECE


def test_verifier_names_the_bad_chunk_and_unwritten_bytes(tmp_path: Path) -> None:
    src = make_engine(tmp_path / "e", {"big": BIG})
    d = digest_file(src / "big")
    fd = os.open(src / "big", os.O_RDWR)
    try:
        v = Verifier(fd, "big", BIG, d.sha256, d.chunks)
        for off, n in v.ranges():
            v.landed(off, n)
        v.finish()  # the file's own bytes verify
        os.pwrite(fd, b"X", CHUNK_SIZE + 5)
        v = Verifier(fd, "big", BIG, d.sha256, d.chunks)
        for off, n in v.ranges():
            v.landed(off, n)
        with pytest.raises(IntegrityError, match="chunk 1 "):
            v.finish()
        v = Verifier(fd, "big", BIG, d.sha256, d.chunks)
        v.landed(0, 10)
        with pytest.raises(IntegrityError, match="never written"):
            v.finish()
    finally:
        os.close(fd)


def test_chunk_lists_are_validated() -> None:
    good = mf.FileEntry("big", BIG, "a" * 64, ("b" * 64,) * 3, CHUNK_SIZE)
    m = mf.build("engine", [good], {})
    assert m.schema == mf.SCHEMA_CHUNKED and mf.parse(m.to_bytes(), m.digest) == m
    assert mf.build("engine", [mf.FileEntry("x", 1, "a" * 64)], {}).schema == mf.SCHEMA  # v1 as before
    for bad in (
        mf.FileEntry("big", BIG, "a" * 64, ("b" * 64,) * 2, CHUNK_SIZE),  # too few
        mf.FileEntry("big", BIG, "a" * 64, ("B" * 64,) * 3, CHUNK_SIZE),  # not lowercase hex
        mf.FileEntry("big", BIG, "a" * 64, ("b" * 64,) * BIG, 1),  # chunk size below the minimum
    ):
        with pytest.raises(UnsafeManifest):
            mf.build("engine", [bad], {})
    with pytest.raises(UnsafeManifest, match="does not allow"):
        mf.validate(mf.Manifest("engine", (good,), {}, schema=mf.SCHEMA))


def test_large_file_pulls_by_chunks_and_resume_reverifies(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    src = make_engine(tmp_path / "eng", {"config.json": b'{"a": 1}', "rank0.engine": BIG, "tok/v.txt": 5000})
    art = reg.push(src, name="big", metadata=ENGINE_META)
    entry = next(f for f in art.files if f.path == "rank0.engine")
    assert len(entry.chunks) == 3 and entry.chunk_size == CHUNK_SIZE
    assert reg.store.get_manifest(art.hash[7:]) is not None
    dest = tmp_path / "dest"
    reg.pull(art.hash, dest)
    assert _tree(dest) == _tree(src) | {mf.MARKER_NAME: (dest / mf.MARKER_NAME).read_bytes()}

    # An interrupted pull left a partial dir; then its files were altered. Only what verifies is reused.
    dest2 = tmp_path / "dest2"
    part = _partial(dest2, art.hash)
    make_engine(part, {})
    data = bytearray((src / "rank0.engine").read_bytes())
    data[CHUNK_SIZE + 7] ^= 0xFF  # chunk 1 altered
    (part / "rank0.engine").write_bytes(bytes(data))
    (part / "config.json").write_bytes(b'{"a": 2}')  # same size, other bytes
    (part / "tok").mkdir()
    (part / "tok" / "v.txt").write_bytes((src / "tok" / "v.txt").read_bytes())  # intact
    (part / transfer.VERIFIED_LIST).write_text(f"{entry.sha256} rank0.engine\n")  # an old-style claim
    fetched: list[tuple[str, list[tuple[int, int]]]] = []
    real = reg.store.download_blob

    def spy(hexdigest, size, fd, landed, ranges):  # noqa: ANN001, ANN202
        fetched.append((hexdigest, list(ranges)))
        return real(hexdigest, size, fd, landed, ranges)

    reg.store.download_blob = spy  # type: ignore[method-assign]
    reg.pull(art.hash, dest2)
    assert _tree(dest2) == _tree(dest)
    assert fetched == [(entry.sha256, [(CHUNK_SIZE, CHUNK_SIZE)])]  # only the altered chunk was fetched
    assert not part.exists()


def test_legacy_v1_manifest_still_pulls(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    src = make_engine(tmp_path / "eng", {"config.json": b"{}", "rank0.engine": CHUNK_SIZE + 3})
    art = reg.push(src, name="new", metadata=ENGINE_META)
    meta = ENGINE_META.to_dict()
    v1 = mf.build("engine", [mf.FileEntry(f.path, f.size, f.sha256) for f in art.files], meta)
    assert v1.schema == mf.SCHEMA and v1.digest != art.hash
    reg.store.put_manifest(v1.digest[7:], v1.to_bytes())
    dest = tmp_path / "dest"
    assert transfer.pull(reg.store, v1.digest, v1, dest, name="old", progress=False)
    assert (dest / "rank0.engine").read_bytes() == (src / "rank0.engine").read_bytes()


def test_corrupt_chunk_in_store_fails_the_pull(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    src = make_engine(tmp_path / "eng", {"rank0.engine": BIG})
    art = reg.push(src, name="big", metadata=ENGINE_META)
    entry = art.files[0]
    data = bytearray((src / "rank0.engine").read_bytes())
    data[2 * CHUNK_SIZE + 1] ^= 1
    if backend.kind == "local-sqlite":
        blob = reg.store._blob(entry.sha256)
        blob.chmod(0o644)
        blob.write_bytes(bytes(data))
    else:
        from registry.store.base import blob_key

        reg.store._client.put_object(
            Bucket=reg.store.bucket, Key=reg.store._key(blob_key(entry.sha256)), Body=bytes(data)
        )
    with pytest.raises(IntegrityError, match="rank0.engine .*chunk 2 "):
        reg.pull(art.hash, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def _big_engine(root: Path, size: int) -> Path:
    """An engine dir with one ``size``-byte file of distinct 1 MiB random blocks (written without holding
    ``size`` bytes in memory)."""
    root.mkdir(parents=True)
    (root / "config.json").write_bytes(b"{}")
    block = os.urandom(1 << 20)
    with open(root / "rank0.engine", "wb") as f:
        for i in range(size >> 20):
            f.write(i.to_bytes(8, "little") + block[8:])
    return root


def _wait_for_bytes(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"finished before it could be interrupted: {proc.communicate()}")
        if any(p.is_file() and p.stat().st_size for p in path.rglob("*")) if path.exists() else False:
            return
        time.sleep(0.02)
    pytest.fail("no bytes appeared")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_pull_stops_within_a_second_and_resumes(
    backend: Backend, tmp_path: Path, sig: int
) -> None:
    reg = backend.open()
    size = 16 * CHUNK_SIZE if backend.kind == "local-sqlite" else 8 * CHUNK_SIZE
    src = _big_engine(tmp_path / "eng", size)
    art = reg.push(src, name="big", metadata=ENGINE_META)
    dest = tmp_path / "dest"
    proc = backend.popen("pull", art.hash, str(dest), "--json")
    _wait_for_bytes(_partial(dest, art.hash), proc)
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - t0
    assert proc.returncode == 130, err
    # a hang guard, not a speed test (the machine may be loaded): a transfer that ran on to its end
    # would not leave the partial state checked below
    assert took < 15, f"took {took:.2f} s to stop: {err}"
    assert "interrupted: pull stopped" in err and "resumes" in err and "Traceback" not in err
    assert _partial(dest, art.hash).exists() and not dest.exists()
    reg.pull(art.hash, dest)
    assert (dest / "rank0.engine").read_bytes() == (src / "rank0.engine").read_bytes()


def test_interrupted_push_stops_within_a_second_and_aborts_uploads(backend: Backend, tmp_path: Path) -> None:
    size = 16 * CHUNK_SIZE if backend.kind == "local-sqlite" else 8 * CHUNK_SIZE
    src = _big_engine(tmp_path / "eng", size)
    proc = backend.popen("push", str(src), "--name", "big", "--json")
    reg = backend.open()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if _store_busy(backend, reg):
            break
        time.sleep(0.02)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - t0
    assert proc.returncode == 130, err
    # a hang guard, not a speed test (the machine may be loaded): a transfer that ran on to its end
    # would not leave the partial state checked below
    assert took < 15, f"took {took:.2f} s to stop: {err}"
    assert "interrupted: push stopped; nothing was published" in err and "Traceback" not in err
    assert reg.list() == []
    assert not _store_busy(backend, reg), (
        list((reg.store.root / "tmp").iterdir()) if backend.kind == "local-sqlite" else ""
    )


def _store_busy(backend: Backend, reg) -> bool:  # noqa: ANN001
    """True while the store holds a push in flight: a staged file or an unfinished multipart upload."""
    if backend.kind == "local-sqlite":
        return any((reg.store.root / "tmp").iterdir())
    s3 = reg.store
    ups = s3._client.list_multipart_uploads(Bucket=s3.bucket, Prefix=s3._key(""))
    return bool(ups.get("Uploads"))

"""S3 push of large files with unknown digests: staged multipart upload while hashing, then server-side copy.

Runs against the real S3 server of tests/services/ceph_rgw.sh (small part sizes so that MiB-sized files take
the multipart path).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from registry.api import Registry, StoreTuning
from tests.registry.conftest import ENGINE_META, make_engine

MIB = 1 << 20


SMALL_PARTS = StoreTuning(s3_multipart_mib=8, s3_part_mib=5)  # MiB-sized files take the multipart path


def _open(tmp_path: Path, s3_url: str, tuning: StoreTuning = SMALL_PARTS) -> Registry:
    # no hash cache: every push reads and hashes every byte
    return Registry.open(f"sqlite:///{tmp_path / 'r.db'}", s3_url, tuning=tuning)


def _keys(store, sub: str) -> list[str]:  # noqa: ANN001
    return [o["Key"] for o in store._list(sub)]


def _uploads(store) -> list[dict]:  # noqa: ANN001
    res = store._client.list_multipart_uploads(Bucket=store.bucket, Prefix=store._key(""))
    return res.get("Uploads", [])


def test_staged_push_publishes_by_digest_and_leaves_no_staging(s3_url: str, tmp_path: Path) -> None:
    reg = _open(tmp_path, s3_url)
    assert reg.store.can_ingest
    src = make_engine(
        tmp_path / "eng", {"config.json": b"{}", "rank0.engine": 23 * MIB + 7, "small.bin": 3 * MIB}
    )
    art = reg.push(src, name="staged", metadata=ENGINE_META)
    assert art.pushed is not None and art.pushed.uploaded_bytes == art.size and art.pushed.reused_bytes == 0
    big = (src / "rank0.engine").read_bytes()
    digest = hashlib.sha256(big).hexdigest()
    assert reg.store.has_blob(digest, len(big))
    assert reg.store.read_blob(digest) == big  # the blob under the digest holds exactly these bytes
    assert _keys(reg.store, "tmp/") == [] and _uploads(reg.store) == []
    # same content under another artifact (new config), digests unknown again: nothing new is stored
    (src / "config.json").write_bytes(b'{"v": 2}')
    again = reg.push(src, name="staged", metadata=ENGINE_META)
    assert again.pushed is not None and again.pushed.uploaded_bytes == len(b'{"v": 2}')
    assert _keys(reg.store, "tmp/") == [] and _uploads(reg.store) == []
    reg.pull(art.hash, tmp_path / "out")
    assert (tmp_path / "out" / "rank0.engine").read_bytes() == big


def test_hash_first_mode_still_works(s3_url: str, tmp_path: Path) -> None:
    reg = _open(tmp_path, s3_url, replace(SMALL_PARTS, s3_staged_push=False))
    assert not reg.store.can_ingest
    src = make_engine(tmp_path / "eng", {"config.json": b"{}", "rank0.engine": 12 * MIB})
    art = reg.push(src, name="hashfirst", metadata=ENGINE_META)
    reg.pull(art.hash, tmp_path / "out")
    assert (tmp_path / "out" / "rank0.engine").read_bytes() == (src / "rank0.engine").read_bytes()
    assert _keys(reg.store, "tmp/") == []


def test_multipart_copy_fallback(s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """UploadPartCopy (used where a server refuses one CopyObject, e.g. AWS above 5 GiB) yields the same
    bytes."""
    import registry.store.s3 as s3mod

    monkeypatch.setattr(s3mod, "COPY_PART", 5 * MIB)  # S3's minimum part size: 3 copy parts for 12 MiB + 1
    reg = _open(tmp_path, s3_url)
    data = os.urandom(12 * MIB + 1)
    reg.store._client.put_object(Bucket=reg.store.bucket, Key=reg.store._key("tmp/src"), Body=data)
    reg.store._copy_multipart(
        {"Bucket": reg.store.bucket, "Key": reg.store._key("tmp/src")}, "tmp/dst", len(data)
    )
    got = reg.store._client.get_object(Bucket=reg.store.bucket, Key=reg.store._key("tmp/dst"))["Body"].read()
    assert got == data


def test_clean_staging_removes_leftovers_only_when_old(s3_url: str, tmp_path: Path) -> None:
    reg = _open(tmp_path, s3_url)
    st = reg.store
    st._client.put_object(Bucket=st.bucket, Key=st._key("tmp/abandoned"), Body=b"x" * 100)
    st._client.create_multipart_upload(Bucket=st.bucket, Key=st._key("tmp/abandoned-mp"))
    assert st.clean_staging(older_than=time.time() - 3600) == 0  # young: kept (a push may be using them)
    assert st.clean_staging(older_than=time.time() + 60) == 2
    assert _keys(st, "tmp/") == [] and _uploads(st) == []
    report = reg.gc(grace_s=0)  # gc calls clean_staging: nothing left to clean
    assert report.staging_cleaned == 0


def test_ranged_pull_detects_a_corrupt_large_blob(s3_url: str, tmp_path: Path) -> None:
    from registry.errors import IntegrityError

    reg = _open(tmp_path, s3_url)
    src = make_engine(tmp_path / "eng", {"rank0.engine": 17 * MIB + 3})
    art = reg.push(src, name="c", metadata=ENGINE_META)
    reg.pull(art.hash, tmp_path / "good")  # 4 ranged parts, hashed in order from the written file
    assert (tmp_path / "good" / "rank0.engine").read_bytes() == (src / "rank0.engine").read_bytes()
    digest = art.files[0].sha256
    bad = bytearray((src / "rank0.engine").read_bytes())
    bad[11 * MIB] ^= 1  # one flipped bit in the third part, same size
    reg.store._client.put_object(
        Bucket=reg.store.bucket, Key=reg.store._key(f"blobs/sha256/{digest[:2]}/{digest}"), Body=bytes(bad)
    )
    with pytest.raises(IntegrityError):
        reg.pull(art.hash, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()

"""Manifest and reference validation (pure, no services)."""

from __future__ import annotations

import pytest

from registry import manifest as mf
from registry.canonical import canonical_json, digest_of
from registry.errors import IntegrityError, InvalidReference, UnsafeManifest
from registry.refs import parse_name_tag, parse_ref

HEX = "ab" * 32


def _obj(files: list[dict]) -> dict:
    return {"schema": mf.SCHEMA, "kind": "engine", "files": files, "metadata": {"tp": 1}}


def test_manifest_digest_is_canonical_json_sha256() -> None:
    m = mf.build(
        "engine", [mf.FileEntry("rank0.engine", 3, HEX), mf.FileEntry("config.json", 2, HEX)], {"tp": 1}
    )
    assert [f.path for f in m.files] == ["config.json", "rank0.engine"]
    assert m.digest == digest_of(m.to_obj())
    assert mf.parse(m.to_bytes(), m.digest) == m


@pytest.mark.parametrize(
    "path, why",
    [
        ("/etc/passwd", "absolute"),
        ("../escape", "'..'"),
        ("a/../../b", "'..'"),
        ("a//b", "not normalised"),
        ("./a", "not normalised"),
        ("a\\b", "backslash"),
        (".trtbuild-artifact.json", "reserved"),
        ("", "non-empty"),
    ],
)
def test_unsafe_paths_are_refused(path: str, why: str) -> None:
    obj = _obj([{"path": path, "size": 1, "sha256": HEX}])
    data = canonical_json(obj)
    with pytest.raises(UnsafeManifest, match=why):
        mf.parse(data, digest_of(obj))


def test_duplicates_links_and_file_dir_clash_are_refused() -> None:
    dup = _obj([{"path": "a", "size": 1, "sha256": HEX}, {"path": "a", "size": 1, "sha256": HEX}])
    with pytest.raises(UnsafeManifest, match="twice"):
        mf.parse(canonical_json(dup), digest_of(dup))
    link = _obj([{"path": "a", "size": 0, "sha256": HEX, "type": "symlink", "target": "/etc/passwd"}])
    with pytest.raises(UnsafeManifest, match="link"):
        mf.parse(canonical_json(link), digest_of(link))
    clash = _obj([{"path": "a", "size": 1, "sha256": HEX}, {"path": "a/b", "size": 1, "sha256": HEX}])
    with pytest.raises(UnsafeManifest, match="both a file and a directory"):
        mf.parse(canonical_json(clash), digest_of(clash))
    bad_size = _obj([{"path": "a", "size": -1, "sha256": HEX}])
    with pytest.raises(UnsafeManifest, match="size"):
        mf.parse(canonical_json(bad_size), digest_of(bad_size))


def test_digest_mismatch_and_non_canonical_bytes_are_integrity_errors() -> None:
    obj = _obj([{"path": "a", "size": 1, "sha256": HEX}])
    with pytest.raises(IntegrityError, match="corrupt"):
        mf.parse(canonical_json(obj), "sha256:" + "0" * 64)
    pretty = b'{"files": [], "kind": "engine", "metadata": {}, "schema": "%s"}' % mf.SCHEMA.encode()
    import hashlib

    with pytest.raises(IntegrityError, match="canonical"):
        mf.parse(pretty, "sha256:" + hashlib.sha256(pretty).hexdigest())


def test_references() -> None:
    assert parse_ref("sha256:" + HEX).digest == "sha256:" + HEX
    r = parse_ref("llama-8b/fp8:prod")
    assert (r.name, r.tag) == ("llama-8b/fp8", "prod")
    r = parse_ref("llama@sha256:" + HEX)
    assert (r.name, r.digest) == ("llama", "sha256:" + HEX)
    assert parse_name_tag("x:y") == ("x", "y")
    assert parse_name_tag("x") == ("x", "latest")  # like docker: a bare name is name:latest
    r = parse_ref("llama")
    assert (r.name, r.tag) == ("llama", "latest")
    r = parse_ref("sha256:" + HEX[:7])  # a prefix of at least 7 hex digits, expanded by the catalog
    assert (r.digest, r.partial, r.or_name) == ("sha256:" + HEX[:7], True, False)
    r = parse_ref(HEX[:12])  # the short hash ls shows; may also be a name
    assert (r.digest, r.partial, r.or_name) == ("sha256:" + HEX[:12], True, True)
    assert not parse_ref(HEX).partial and parse_ref(HEX).digest == "sha256:" + HEX
    r = parse_ref("llama@sha256:" + HEX[:10])
    assert (r.name, r.digest, r.partial) == ("llama", "sha256:" + HEX[:10], True)
    for bad in ("sha256:xyz", "sha256:abcdef", "a@sha256:12", "a@" + HEX, ":tag", "na me:t", ""):
        with pytest.raises(InvalidReference):
            parse_ref(bad)

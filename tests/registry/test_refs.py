"""References like docker's: unique hash prefixes (>= 7 hex digits) wherever a reference is taken, ``NAME``
meaning ``NAME:latest``, and ``ls`` whose columns stay whole when piped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.errors import InvalidReference, NotFound
from tests.registry.conftest import ENGINE_META, Backend, make_engine


def _clone_row(reg, hash_: str, new_hash: str) -> None:  # noqa: ANN001
    """A catalog row under a chosen hash (the same manifest): two hashes sharing a 7-digit prefix cannot be
    produced by pushing in a test's time, and ambiguity is a catalog matter."""
    row = reg.catalog.get_row(hash_)
    values = {c.name: getattr(row, c.name) for c in row.__table__.columns} | {"hash": new_hash}
    reg.catalog.publish(values, "twins", None)


def test_hash_prefixes_and_bare_names(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    art = reg.push(make_engine(tmp_path / "a", {"config.json": b"a"}), name="llama", metadata=ENGINE_META)
    reg.tag(art.hash, "llama:latest")
    hexdigest = art.hash.removeprefix("sha256:")
    for ref in (hexdigest[:7], hexdigest[:12], f"sha256:{hexdigest[:9]}", f"llama@sha256:{hexdigest[:8]}"):
        assert reg.resolve_ref(ref) == art.hash, ref
    assert reg.get("llama").hash == art.hash  # NAME = NAME:latest
    with pytest.raises(NotFound):
        reg.get(f"other@sha256:{hexdigest[:8]}")
    with pytest.raises(NotFound) as exc:
        reg.get(hexdigest[:6])  # too short for a prefix: read as the name NAME:latest, which does not exist
    assert "at least 7 hex digits" in str(exc.value)
    twin_a, twin_b = "sha256:abcdef1" + "0" * 57, "sha256:abcdef1" + "1" * 57
    _clone_row(reg, art.hash, twin_a)
    _clone_row(reg, art.hash, twin_b)
    with pytest.raises(InvalidReference) as exc:
        reg.resolve_ref("abcdef1")
    assert "ambiguous" in str(exc.value) and "more hex digits" in str(exc.value)
    assert reg.resolve_ref("abcdef11") == twin_b
    # through the CLI: the 12-digit hash ls shows, a bare name, and the exit codes of the failures
    dest = tmp_path / "pulled"
    r = backend.cli("pull", hexdigest[:12], str(dest), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["hash"] == art.hash
    r = backend.cli("show", "llama", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["hash"] == art.hash, r.stderr
    r = backend.cli("tag", hexdigest[:10], "llama:prod")
    assert r.returncode == 0 and f"llama:prod -> {art.hash}" in r.stdout, r.stderr
    r = backend.cli("show", "abcdef1")
    assert r.returncode == 2 and "ambiguous" in r.stderr and "Traceback" not in r.stderr
    r = backend.cli("tag", "sha256:" + "9" * 64, "llama:typo")  # was a foreign-key traceback
    assert r.returncode == 1 and "no artifact sha256:999" in r.stderr and "Traceback" not in r.stderr
    r = backend.cli("show", "9" * 12)
    assert r.returncode == 1 and "no tag 999999999999:latest" in r.stderr


def test_ls_piped_has_whole_stable_columns(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    long_name = "org/" + "very-long-model-name-" * 6 + "fp8"
    art = reg.push(make_engine(tmp_path / "a", {"config.json": b"a"}), name=long_name, metadata=ENGINE_META)
    reg.tag(art.hash, f"{long_name}:prod")
    reg.tag(art.hash, f"{long_name}:v1")
    r = backend.cli("ls")  # stdout is a pipe
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header.split() == ["HASH", "NAME", "KIND", "TAGS", "SIZE", "ARCH", "TRTLLM", "TPxPP", "CREATED"]
    cells = row.split()
    assert len(cells) == 9
    assert cells[0] == art.hash and cells[1] == long_name
    assert cells[3] == f"{long_name}:prod,{long_name}:v1"  # tags with their name
    assert header.index("NAME") == row.index(long_name)  # aligned
    listed = json.loads(backend.cli("ls", "--json").stdout)
    assert listed[0]["hash"] == art.hash and listed[0]["tags"] == [f"{long_name}:prod", f"{long_name}:v1"]
    assert backend.cli("ls", "--no-trunc").stdout == r.stdout


def test_a_name_pushed_without_a_tag_says_how_to_get_one(backend: Backend, tmp_path: Path) -> None:
    """NAME is NAME:latest: when NAME has artifacts but no such tag, the error says so and how to tag one;
    an unknown name says that no artifact has it."""
    reg = backend.open()
    reg.push(make_engine(tmp_path / "a", {"config.json": b"a"}), name="untagged", metadata=ENGINE_META)
    with pytest.raises(NotFound) as exc:
        reg.get("untagged")
    assert "untagged has artifacts, none tagged latest" in str(exc.value)
    assert "trtbuild tag HASH untagged:latest" in str(exc.value)
    with pytest.raises(NotFound) as exc:
        reg.get("nosuchname")
    assert "no artifact has that name" in str(exc.value)

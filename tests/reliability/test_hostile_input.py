"""Hostile and careless input: manifests and catalog rows written straight into the store and catalog (as a
buggy or compromised writer could), names, tags, --metadata and file names. Each is refused with a plain
message (exit 1 for bad stored data, 2 for bad user input) before anything is written, and one bad catalog
row never stops ls or gc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry import manifest as mf
from registry.canonical import canonical_json, digest_of
from registry.catalog.db import utcnow
from tests.registry.conftest import ENGINE_META, Backend, make_engine


def _publish_raw(reg, obj: object, name: str, manifest_column: object = None, **columns: object) -> str:  # noqa: ANN001
    """Write a manifest into the store and a row into the catalog, bypassing every check of push."""
    hash_ = digest_of(obj)
    reg.store.put_manifest(hash_[7:], canonical_json(obj))
    reg.catalog.publish(
        {
            "hash": hash_,
            "kind": "engine",
            "name": name,
            "size": 3,
            "file_count": 1,
            "created_at": utcnow(),
            "manifest": obj if manifest_column is None else manifest_column,
            "provenance": {},
            **columns,
        },
        name,
        "latest",
    )
    return hash_


def _plain(r, code: int, *needles: str) -> None:  # noqa: ANN001
    assert r.returncode == code, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr[-2000:]


HOSTILE_PATHS = [
    ("x" * 256, "more than 255 bytes"),
    ("/".join(["d"] * 2500) + "/f", "more than"),
    ("a\nb.json", "control character"),
    ("tab\there", "control character"),
    ("é" * 200, "more than 255 bytes"),  # 400 bytes of UTF-8
]


@pytest.mark.parametrize(
    "path, match", HOSTILE_PATHS, ids=["long-component", "deep", "newline", "tab", "utf8"]
)
def test_unwritable_manifest_paths_are_refused_before_any_write(
    local: Backend, tmp_path: Path, path: str, match: str
) -> None:
    reg = local.open()
    obj = {
        "schema": mf.SCHEMA,
        "kind": "engine",
        "files": [{"path": path, "size": 3, "sha256": "0" * 64}],
        "metadata": {},
    }
    hash_ = _publish_raw(reg, obj, "evil")
    dest = tmp_path / "x" / "dest"
    _plain(local.cli("pull", hash_, str(dest)), 1, match)
    assert not (tmp_path / "x").exists()


def test_bad_catalog_rows_never_stop_ls_or_gc(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    good = reg.push(
        make_engine(tmp_path / "good", {"config.json": b"{}"}), name="good", tag="t", metadata=ENGINE_META
    )
    valid = {
        "schema": mf.SCHEMA,
        "kind": "engine",
        "files": [{"path": "a", "size": 1, "sha256": "1" * 64}],
        "metadata": {},
    }
    bad = [
        _publish_raw(reg, {**valid, "metadata": {"n": 1}}, "bad1", manifest_column="a string"),
        _publish_raw(reg, {**valid, "metadata": {"n": 2}}, "bad2", manifest_column=[1, 2]),
        _publish_raw(reg, {**valid, "metadata": {"n": 3}}, "bad3", manifest_column={"files": "nope"}),
        _publish_raw(reg, {**valid, "metadata": {"n": 4}}, "bad4", manifest_column={"files": [{"path": 1}]}),
    ]
    if backend.kind == "local-sqlite":  # SQLite keeps any value in any column
        import sqlite3

        db = sqlite3.connect(backend.db_url.removeprefix("sqlite:///"))
        db.execute("UPDATE artifacts SET created_at = 'not a date' WHERE name = 'bad1'")
        db.commit()
        db.close()
    r = backend.cli("ls")
    _plain(r, 0, "unreadable catalog row")
    assert "good" in r.stdout
    assert sum(h in r.stderr for h in bad) == len(bad)
    r = backend.cli("ls", "--json")
    _plain(r, 0)
    assert [a["hash"] for a in json.loads(r.stdout)] == [good.hash]
    r = backend.cli("verify")  # every row checked; the bad ones reported, the good one fine
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert all(h[:19] in r.stdout + r.stderr for h in bad), r.stdout + r.stderr
    for args in (("gc", "--dry-run", "--keep-last", "0"), ("gc", "--grace", "0")):
        r = backend.cli(*args)
        _plain(r, 0, "manifest column is not a manifest object")
    reg.pull("good:t", tmp_path / "pulled")
    assert (tmp_path / "pulled" / "config.json").read_bytes() == b"{}"


BAD_NAMES = [
    "llama\n",
    "llama ",
    "",
    "a..b",
    "-a",
    "a" * 201,
    "0" * 40,
    "f" * 64,
    "deadbeef",
    "näme",
    "a/",
    "x\x00y",
]
BAD_TAGS = ["", "t\n", ".t", "t" * 129, "t:t", "t/t", "ü"]


def test_names_and_tags_follow_one_grammar(local: Backend, tmp_path: Path) -> None:
    from registry.errors import InvalidReference

    src = make_engine(tmp_path / "e", {"config.json": b"{}"})
    reg = local.open()
    for name in BAD_NAMES:
        with pytest.raises(InvalidReference, match="invalid artifact name"):
            reg.push(src, name=name, metadata=ENGINE_META)
    for tag in BAD_TAGS:
        with pytest.raises(InvalidReference, match="invalid tag"):
            reg.push(src, name="ok", tag=tag, metadata=ENGINE_META)
    good = reg.push(src, name="team/llama-3.1-8b__fp8", tag="v1.0_rc-2", metadata=ENGINE_META)
    for tag in BAD_TAGS:
        with pytest.raises(InvalidReference):
            reg.tag(good.hash, f"team/llama-3.1-8b__fp8:{tag}")
    assert [a.names for a in reg.list()] == [["team/llama-3.1-8b__fp8"]]
    # through the CLI: exit 2, a plain message
    _plain(local.cli("push", str(src), "--name", "llama\n"), 2, "invalid artifact name", "fix:")
    _plain(local.cli("push", str(src), "--name", "f" * 64), 2, "reads as a hash")
    _plain(local.cli("push", str(src), "--name", "ok", "--tag", ""), 2, "invalid tag")
    _plain(local.cli("tag", good.hash, "team/llama-3.1-8b__fp8:t\n"), 2)


@pytest.mark.parametrize(
    "metadata, match",
    [
        ('{"max_seq_len": ' + "9" * 30 + "}", "out of range"),
        ("[" * 5000 + "]" * 5000, "not valid JSON"),
        ('{"model_source": ' + '{"a": ' * 40 + "1" + "}" * 41, "must be a string"),
        ('{"tp": NaN}', "must be an integer"),
        ('{"model_source": "a\\u0000b"}', "NUL"),
        ('{"tp": 99999999999}', "out of range"),
        ('{"tp": -1}', "out of range"),
        ('{"gpu_arch": "sm90", "mystery": 1}', "unknown field"),
        ("@/nonexistent/meta.json", "cannot read"),
        ("@/", "cannot read"),
        ("[1]", "expected a JSON object"),
    ],
    ids=[
        "int-beyond-64-bit",
        "deep-array",
        "deep-object",
        "nan",
        "nul",
        "int-column",
        "negative",
        "unknown",
        "missing",
        "dir",
        "list",
    ],
)
def test_bad_metadata_is_invalid_input(local: Backend, tmp_path: Path, metadata: str, match: str) -> None:
    src = make_engine(tmp_path / "e", {"config.json": b"{}"})
    _plain(local.cli("push", str(src), "--name", "m", "--metadata", metadata), 2, match)
    assert local.open().list() == []


@pytest.mark.parametrize("name", ["a\nb", "x" * 256], ids=["newline", "long"])
def test_unwritable_file_names_are_refused_at_push(local: Backend, tmp_path: Path, name: str) -> None:
    src = make_engine(tmp_path / "e", {"config.json": b"{}"})
    try:
        (src / name).write_bytes(b"x")
    except OSError:
        pytest.skip("this file system refuses the name itself")
    _plain(local.cli("push", str(src), "--name", "f"), 2, "cannot be part of an artifact")

"""Bake from local directories refuses symbolic links that leave the directory it copies and malformed
engine configs, with short messages naming the file, field and type (exit 2, no context left behind)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bake.conftest import write_engine

REPO = Path(__file__).resolve().parents[2]


def _bake(engine: Path, ctx: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ["bake", "--from-dir", str(engine), "--template", "trtllm-serve", "--context-only", str(ctx)]
    return subprocess.run(
        [sys.executable, "-m", "trtbuild", *args, "--no-base-check", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )


def _refused(r: subprocess.CompletedProcess, ctx: Path, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and len(r.stderr) < 1500, r.stderr[-2000:]
    for n in needles:
        assert n in r.stderr, r.stderr
    assert not ctx.exists() or not any(ctx.iterdir()), "a refused bake leaves no context behind"


def _secret_outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_rsa").write_text("PRIVATE KEY")
    return outside


@pytest.mark.parametrize("where", ["tokenizer/tokenizer.json", "extra.bin", "tokenizer/deep/link"])
def test_symlink_leaving_the_directory_is_refused(tmp_path: Path, where: str) -> None:
    engine = write_engine(tmp_path / "engine")
    link = engine / where
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(_secret_outside(tmp_path) / "id_rsa")
    ctx = tmp_path / "ctx"
    _refused(_bake(engine, ctx), ctx, "symbolic link", "outside")
    assert not list(tmp_path.glob("ctx/**/id_rsa"))


def test_symlinked_directory_and_tokenizer_option_are_refused(tmp_path: Path) -> None:
    engine = write_engine(tmp_path / "engine")
    (engine / "tokenizer" / "more").symlink_to(_secret_outside(tmp_path))
    ctx = tmp_path / "ctx"
    _refused(_bake(engine, ctx), ctx, "symbolic link to a directory")
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").symlink_to(tmp_path / "outside" / "id_rsa")
    _refused(_bake(write_engine(tmp_path / "e2"), ctx, "--tokenizer", str(tok)), ctx, "outside")


def test_symlink_inside_the_directory_is_staged_as_its_bytes(tmp_path: Path) -> None:
    engine = write_engine(tmp_path / "engine")
    (engine / "tokenizer" / "alias.json").symlink_to("tokenizer.json")
    r = _bake(engine, tmp_path / "ctx")
    assert r.returncode == 0, r.stderr
    staged = tmp_path / "ctx" / "tokenizer" / "alias.json"
    assert (
        not staged.is_symlink()
        and staged.read_text() == (engine / "tokenizer" / "tokenizer.json").read_text()
    )


def _with_config(tmp_path: Path, edit) -> Path:  # noqa: ANN001
    engine = write_engine(tmp_path / "engine")
    config = json.loads((engine / "config.json").read_text())
    edit(config)
    (engine / "config.json").write_text(json.dumps(config))
    return engine


CONFIG_EDITS = {
    "build-config-list": (
        lambda c: c.update(build_config=[1, 2]),
        "build_config must be a JSON object, not list",
    ),
    "quantization-str": (
        lambda c: c["pretrained_config"].update(quantization="fp8"),
        "pretrained_config.quantization must be a JSON object, not str",
    ),
    "mapping-int": (lambda c: c["pretrained_config"].update(mapping=3), "mapping must be a JSON object"),
    "pretrained-null-ok-but-batch-missing": (
        lambda c: c["build_config"].pop("max_batch_size"),
        "build_config.max_batch_size must be a positive integer",
    ),
    "architecture-list": (
        lambda c: c["pretrained_config"].update(architecture=["a"]),
        "pretrained_config.architecture must be a string",
    ),
    "tp-huge": (lambda c: c["pretrained_config"]["mapping"].update(tp_size=100000), "more than 1024 ranks"),
    "tp-str": (lambda c: c["pretrained_config"]["mapping"].update(tp_size="2"), "tp_size must be a positive"),
    "version-int": (lambda c: c.update(version=1), "version must be the TensorRT-LLM version string"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_EDITS))
def test_malformed_config_names_field_and_type(tmp_path: Path, case: str) -> None:
    edit, message = CONFIG_EDITS[case]
    ctx = tmp_path / "ctx"
    _refused(_bake(_with_config(tmp_path, edit), ctx), ctx, message)


@pytest.mark.parametrize(
    "raw, message",
    [(b"\xff\xfe{}", "not valid JSON"), (b"[" * 100_000 + b"]" * 100_000, "nested too deeply")],
    ids=["not-utf8", "deep"],
)
def test_unreadable_config(tmp_path: Path, raw: bytes, message: str) -> None:
    engine = write_engine(tmp_path / "engine")
    (engine / "config.json").write_bytes(raw)
    ctx = tmp_path / "ctx"
    _refused(_bake(engine, ctx), ctx, message)


def test_missing_ranks_message_is_short(tmp_path: Path) -> None:
    engine = _with_config(tmp_path, lambda c: c["pretrained_config"]["mapping"].update(tp_size=1000))
    ctx = tmp_path / "ctx"
    _refused(_bake(engine, ctx), ctx, "and 995 more")

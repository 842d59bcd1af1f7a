"""Fixtures of the builder tests: the toolchain double, a tiny model, a registry backend, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.registry.conftest import backend, pg_url, s3_url  # noqa: F401  (fixtures)
from tests.runner.conftest import engine_ulimits  # noqa: F401  (fixture)
from tests.toolchain_double.fixture import (  # noqa: F401  (fixtures)
    docker_client,
    make_tiny_llama,
    toolchain_double,
    write_toolchains_toml,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny Llama (stdlib weights) with a real tokenizer trained offline, so engines carry tokenizer/."""
    from tests.tiny_models import train_tokenizer

    model = make_tiny_llama(tmp_path_factory.mktemp("model") / "tiny-llama")
    train_tokenizer(model, vocab_size=512)
    return model


@pytest.fixture
def project(tmp_path, toolchain_double, tiny_model, engine_ulimits, backend):  # noqa: F811
    """A recipe on the tiny model pinned to the 1.1.0 double, a registry (LocalStore+SQLite, then
    S3Store+PostgreSQL) and a runner for `trtbuild`."""
    toolchains = tmp_path / "toolchains.toml"
    write_toolchains_toml(toolchains, toolchain_double)
    return Project(tmp_path, toolchains, tiny_model, engine_ulimits, backend)


class Project:
    def __init__(self, root: Path, toolchains: Path, model: Path, ulimits, registry_backend) -> None:
        self.root, self.toolchains, self.model = root, toolchains, model
        self.backend = registry_backend
        self.env = {**os.environ, **registry_backend.env, "TRTBUILD_TOOLCHAINS": str(toolchains)}
        self.build_flags = ["--gpus", "0"]
        if ulimits is not None:  # a sandboxed Docker Engine that cannot raise memlock
            self.build_flags += ["--memlock-limit", str(ulimits["memlock"][0])]

    def recipe(
        self,
        name: str = "tiny.toml",
        *,
        max_batch_size: int = 4,
        extra: str = "",
        arch: str = "sm90",
        model: Path | None = None,
        tp: int = 2,
        recipe_name: str = "tiny-llama-bf16",
    ) -> Path:
        path = self.root / name
        path.write_text(f"""name = "{recipe_name}"
[model]
source = "file://{model or self.model}"
dtype = "float16"
[parallelism]
tp = {tp}
[limits]
max_batch_size = {max_batch_size}
max_input_len = 64
max_seq_len = 128
max_num_tokens = 256
{extra}
[target]
gpu_arch = "{arch}"
toolchain = "double-1.1.0"
""")
        return path

    def cli(self, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "trtbuild", *args],
            env={**self.env, **(env or {})},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def build(self, recipe: Path, *more: str, env: dict | None = None) -> dict:
        result = self.cli("build", str(recipe), "--json", *self.build_flags, *more, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def popen_build(self, recipe: Path, *more: str, env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "trtbuild", "build", str(recipe), *self.build_flags, *more],
            env={**self.env, **(env or {})},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

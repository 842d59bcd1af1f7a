"""Fixtures of the farm's end-to-end tests: the one-node Slurm cluster (tests/services/slurm.sh), the
toolchain double, a tiny model and the shared registry (PostgreSQL + Ceph RGW S3)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.builder.conftest import Project, tiny_model  # noqa: F401  (fixture)
from tests.registry.conftest import Backend, pg_url, s3_url  # noqa: F401  (fixtures)
from tests.runner.conftest import engine_ulimits  # noqa: F401  (fixture)
from tests.toolchain_double.fixture import (  # noqa: F401  (fixtures)
    docker_client,
    toolchain_double,
    unavailable,
    write_toolchains_toml,
)


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """SLURM_CONF of a live cluster whose node is up (fail in CI / skip elsewhere without one)."""
    conf = os.environ.get("SLURM_CONF")
    if not conf or shutil.which("sinfo") is None:
        unavailable("no Slurm cluster: run tests/services/slurm.sh start and export what it prints")
    proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 or not any(s in proc.stdout for s in ("idle", "mixed", "allocated")):
        unavailable(f"Slurm at {conf} has no usable node: {proc.stdout.strip()} {proc.stderr.strip()}")
    return conf


@pytest.fixture
def farm_project(tmp_path, toolchain_double, tiny_model, engine_ulimits, pg_url, s3_url):  # noqa: F811
    """The builder tests' Project on the shared registry (PostgreSQL + S3): what a fleet shares."""
    home = tmp_path / "home"
    backend = Backend(
        "s3-postgres",
        pg_url,
        s3_url,
        {"TRTBUILD_DB_URL": pg_url, "TRTBUILD_STORE_URL": s3_url, "TRTBUILD_HOME": str(home)},
    )
    toolchains = write_toolchains_toml(tmp_path / "toolchains.toml", toolchain_double)
    return Project(tmp_path, toolchains, tiny_model, engine_ulimits, backend)


def write_recipe(project: Project, name: str, *, dtype: str, max_batch_size: int = 4) -> Path:
    """A tiny-Llama recipe on the 1.1.0 double (TP2), locked by `trtbuild lock` (a farm builds --locked)."""
    path = project.root / "recipes" / f"{name}.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"""name = "{name}"
[model]
source = "file://{project.model}"
dtype = "{dtype}"
[parallelism]
tp = 2
[limits]
max_batch_size = {max_batch_size}
max_input_len = 64
max_seq_len = 128
max_num_tokens = 256
[target]
gpu_arch = "sm90"
toolchain = "double-1.1.0"
""")
    locked = project.cli("lock", str(path))
    assert locked.returncode == 0, locked.stderr
    return path

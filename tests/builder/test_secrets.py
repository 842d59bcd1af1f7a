"""No secret reaches a log, an output, the catalog, the store, a pulled or baked file: a real build through
the Docker Engine with distinctive secret values, then every byte the build left behind is searched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SECRETS = {
    "HF_TOKEN": "hf_TrtbuildSecret0001",
    "AWS_SECRET_ACCESS_KEY": "TrtbuildSecret0002aws",
    "MY_SETTING": "TrtbuildSecret0003plain-looking",  # --env: secret unless marked plain
    "GH_TOKEN": "TrtbuildSecret0004gh",  # a credential stays secret even when marked plain
    "DB": "postgresql://u:TrtbuildSecret0005@db/x",  # the password of a URL, even when marked plain
}
PLAIN = {"VISIBLE_SETTING": "TrtbuildPlain0006"}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def _catalog_dump(db_url: str) -> str:
    from sqlalchemy import MetaData, create_engine, select

    engine = create_engine(db_url)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        dump = [repr(list(conn.execute(select(t)))) for t in meta.sorted_tables]
    engine.dispose()
    return "\n".join(dump)


def _store_objects(store_url: str) -> dict[str, bytes]:
    if not store_url.startswith("s3://"):
        return {}  # a local store lies under tmp_path: searched with the files
    import os
    from urllib.parse import parse_qs, urlparse

    import boto3

    url = urlparse(store_url)
    s3 = boto3.client("s3", endpoint_url=parse_qs(url.query)["endpoint"][0])
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=url.netloc, Prefix=url.path.strip("/")):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = s3.get_object(Bucket=url.netloc, Key=obj["Key"])["Body"].read()
    assert out, os.environ.get("TRTBUILD_TEST_S3_ENDPOINT")
    return out


def test_no_secret_anywhere_after_a_build_with_env(project, tmp_path: Path) -> None:
    recipe = project.recipe()
    env_flags = []
    for name, value in SECRETS.items():
        env_flags += ["--env-plain" if name in ("GH_TOKEN", "DB") else "--env", f"{name}={value}"]
    for name, value in PLAIN.items():
        env_flags += ["--env-plain", f"{name}={value}"]
    built = project.cli("build", str(recipe), *project.build_flags, *env_flags)
    assert built.returncode == 0, built.stderr[-3000:]
    as_json = project.cli("build", str(recipe), "--json", *project.build_flags, *env_flags)  # a cache hit
    shown = project.cli("show", "tiny-llama-bf16:latest", "--json")
    art = json.loads(shown.stdout)
    pulled = project.cli("pull", art["hash"], str(tmp_path / "pulled"))
    assert pulled.returncode == 0, pulled.stderr
    baked = project.cli(
        "bake",
        art["hash"],
        "--template",
        "trtllm-serve",
        "--context-only",
        str(tmp_path / "ctx"),
        "--no-base-check",
    )
    assert baked.returncode == 0, baked.stderr[-2000:]

    haystacks = {"build output": built.stdout + built.stderr, "json build": as_json.stdout + as_json.stderr}
    haystacks |= {"show": shown.stdout + shown.stderr, "bake": baked.stdout + baked.stderr}
    haystacks["catalog dump"] = _catalog_dump(project.backend.db_url)
    blobs = _files(tmp_path) | _store_objects(project.backend.store_url)
    secret_values = [*SECRETS.values(), "TrtbuildSecret0005"]
    for where, text in haystacks.items():
        for value in secret_values:
            assert value not in text, f"{value} found in the {where}"
    for where, data in blobs.items():
        for value in secret_values:
            assert value.encode() not in data, f"{value} found in {where}"
    logs = [data for where, data in blobs.items() if where.endswith(".log")]
    assert logs and all(b"TrtbuildPlain0006" in data for data in logs), "plain values stay visible"
    assert any(b"HF_TOKEN=***" in data for data in logs)
    assert (tmp_path / "pulled" / "trtbuild" / "build.log").is_file()


def test_farm_refuses_credentials_in_job_scripts(tmp_path: Path) -> None:
    """farm --env values are written into scheduler scripts: a credential there is refused (not echoed)."""
    import os
    import subprocess
    import sys

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "trtbuild",
            "farm",
            "submit",
            "x.toml",
            "--scheduler",
            "slurm",
            "--env",
            "HF_TOKEN=TrtbuildSecret0007",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TRTBUILD_HOME": str(tmp_path)},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert r.returncode == 2 and "HF_TOKEN is a credential" in r.stderr, r.stderr
    assert "TrtbuildSecret0007" not in r.stdout + r.stderr

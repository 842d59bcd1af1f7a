"""``trtbuild bake`` through the real entry point: exit codes and plain messages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bake.conftest import image_tag, metadata_for
from trtbuild.bake.render import dockerfiles_dir

REPO = Path(__file__).resolve().parents[2]


def trtbuild(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trtbuild", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def artifact_json(tmp_path: Path, **meta) -> Path:
    path = tmp_path / "artifact.json"
    path.write_text(
        json.dumps(
            {
                "hash": "sha256:" + "7" * 64,
                "name": "llama-8b:fp8",
                "created_at": "2026-01-02T03:04:05+00:00",
                "metadata": metadata_for(**meta).to_dict(),
            }
        )
    )
    return path


def test_context_only_json(engine_factory, tmp_path):
    engine = engine_factory()
    out = trtbuild(
        "bake",
        "--from-dir",
        str(engine),
        "--metadata",
        str(artifact_json(tmp_path)),
        "--template",
        "triton",
        "--base",
        "trtbuild-test/bake:any",
        "--context-only",
        str(tmp_path / "ctx"),
        "--no-base-check",
        "--json",
        "--triton-param",
        "enable_kv_cache_reuse=true",
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["artifact"] == "sha256:" + "7" * 64
    assert result["labels"]["org.opencontainers.image.created"] == "2026-01-02T03:04:05+00:00"
    assert result["labels"]["ai.trtbuild.recipe_digest"] == "sha256:" + "1" * 64
    assert result["context_dir"] == str(tmp_path / "ctx") and result["image_id"] is None
    assert result["base_version_source"] == "not checked (--no-base-check)"
    values = json.loads((tmp_path / "ctx" / "model_repo_fill" / "values.json").read_text())
    assert values["substitutions"]["enable_kv_cache_reuse"] == "true"
    assert (tmp_path / "ctx" / "engine" / "rank0.engine").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-batch-size", "128"], "fix: rebuild with limits.max_batch_size = 128 in the recipe"),
        (["--max-beam-width", "8"], "max_beam_width=8 exceeds"),
        (["--kv-cache-free-gpu-mem-fraction", "0"], "must be in (0, 1]"),
        (["--health-start-period", "ten minutes"], "expected a duration"),
        (["--push"], "--push builds an image; --context-only does not"),
    ],
)
def test_invalid_input_exits_2_with_a_plain_message(engine_factory, tmp_path, args, message):
    out = trtbuild(
        "bake",
        "--from-dir",
        str(engine_factory()),
        "--template",
        "trtllm-serve",
        "--context-only",
        str(tmp_path / "ctx"),
        "--no-base-check",
        *args,
    )
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "ctx").exists(), "a refused bake leaves no context behind"


@pytest.mark.parametrize(
    "param",
    ["batching_strategy=static", "batch_scheduler_policy=fifo", "enable_kv_cache_reuse=yes"],
)
def test_bad_triton_param_exits_2_naming_it(engine_factory, tmp_path, param):
    out = trtbuild(
        "bake",
        "--from-dir",
        str(engine_factory()),
        "--template",
        "triton",
        "--base",
        "trtbuild-test/bake:any",
        "--context-only",
        str(tmp_path / "ctx"),
        "--no-base-check",
        "--triton-param",
        param,
    )
    name, _, value = param.partition("=")
    assert out.returncode == 2, out.stderr
    assert f"--triton-param {name}: '{value}' must be one of" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "ctx").exists()


def test_metadata_outside_the_contract_exits_2(engine_factory, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"metadata": {**metadata_for().to_dict(), "max_batch_sise": 8}}))
    out = trtbuild(
        "bake",
        "--from-dir",
        str(engine_factory()),
        "--metadata",
        str(bad),
        "--template",
        "trtllm-serve",
        "--context-only",
        str(tmp_path / "ctx"),
        "--no-base-check",
    )
    assert out.returncode == 2, out.stderr
    assert f"--metadata {bad}: engine metadata: unknown field 'max_batch_sise'" in out.stderr
    assert "known fields:" in out.stderr and "Traceback" not in out.stderr


def test_ref_or_from_dir(engine_factory, tmp_path):
    out = trtbuild("bake", "--template", "trtllm-serve", "--tag", "x/y:z")
    assert out.returncode == 2 and "exactly one of REF or --from-dir" in out.stderr
    out = trtbuild("bake", "--from-dir", str(engine_factory()), "--template", "trtllm-serve")
    assert out.returncode == 2 and "--tag is required" in out.stderr


def test_missing_template_variable_exits_2(engine_factory, tmp_path):
    broken = tmp_path / "dockerfiles"
    shutil.copytree(dockerfiles_dir(), broken)
    path = broken / "trtllm-serve.Dockerfile.j2"
    path.write_text(path.read_text().replace("EXPOSE {{ port }}", "EXPOSE {{ port }} {{ metrics_port }}"))
    out = trtbuild(
        "bake",
        "--from-dir",
        str(engine_factory()),
        "--template",
        "trtllm-serve",
        "--context-only",
        str(tmp_path / "ctx"),
        "--no-base-check",
        env={"TRTBUILD_DOCKERFILES": str(broken)},
    )
    assert out.returncode == 2, out.stderr
    assert "template variable missing: 'metrics_port' is undefined" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_ref_is_a_plain_error(tmp_path):
    out = trtbuild(
        "bake", "llama-8b:fp8", "--template", "trtllm-serve", "--context-only", str(tmp_path / "ctx")
    )
    assert out.returncode == 1 and "no tag llama-8b:fp8" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "ctx").exists()


@pytest.mark.docker
def test_cli_builds_and_prints_the_image_id(docker_client, base_image_factory, engine_factory, tmp_path):
    tag = image_tag("cli")
    out = trtbuild(
        "bake",
        "--from-dir",
        str(engine_factory()),
        "--metadata",
        str(artifact_json(tmp_path)),
        "--template",
        "trtllm-serve",
        "--base",
        base_image_factory("1.0.0"),
        "--tag",
        tag,
    )
    assert out.returncode == 0, out.stderr
    image = docker_client.images.get(tag)
    assert out.stdout.strip() == image.id
    assert image.labels["ai.trtbuild.artifact"] == "sha256:" + "7" * 64
    assert "checking TensorRT-LLM version" in out.stderr and "Step" in out.stderr


@pytest.mark.docker
def test_cli_version_mismatch_exits_2(docker_client, base_image_factory, engine_factory, tmp_path):
    out = trtbuild(
        "bake",
        "--from-dir",
        str(engine_factory()),
        "--template",
        "trtllm-serve",
        "--base",
        base_image_factory("1.1.0"),
        "--tag",
        image_tag("cli-mismatch"),
    )
    assert out.returncode == 2, out.stderr
    assert "serialization version mismatch" in out.stderr and "Traceback" not in out.stderr

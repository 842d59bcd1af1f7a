"""Pre-bake from a published artifact: build with the double, then `trtbuild bake NAME:TAG` pulls it from
the registry (verified) and builds a real serving image through the Docker Engine."""

from __future__ import annotations

import json

import pytest

from tests.bake.conftest import base_image_factory, image_tag  # noqa: F401  (fixture)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_bake_a_published_engine(project, docker_client, base_image_factory):  # noqa: F811
    built = project.build(project.recipe("bake.toml", max_batch_size=5))
    base = base_image_factory("1.1.0")
    tag = image_tag("published")
    result = project.cli(
        "bake", "tiny-llama-bf16:latest", "--template", "trtllm-serve", "--base", base, "--tag", tag, "--json"
    )
    assert result.returncode == 0, result.stderr
    baked = json.loads(result.stdout)
    try:
        image = docker_client.images.get(tag)
        assert image.labels["ai.trtbuild.artifact"] == built["hash"]
        assert image.labels["ai.trtbuild.trtllm_version"] == "1.1.0"
        assert baked["image_id"] == image.id
        out = docker_client.containers.run(
            image.id, ["sha256sum", "/opt/trtbuild/engine/rank0.engine"], entrypoint=[], remove=True
        ).decode()
        dest = project.root / "pulled"
        assert project.cli("pull", built["hash"], str(dest)).returncode == 0
        import hashlib

        assert out.split()[0] == hashlib.sha256((dest / "rank0.engine").read_bytes()).hexdigest()
    finally:
        docker_client.images.remove(tag, force=True)


def test_bake_refuses_a_base_of_another_trtllm_version(project, base_image_factory):  # noqa: F811
    project.build(project.recipe("bake2.toml", max_batch_size=6))
    result = project.cli(
        "bake",
        "tiny-llama-bf16:latest",
        "--template",
        "trtllm-serve",
        "--base",
        base_image_factory("1.0.0"),
        "--tag",
        image_tag("mismatch"),
    )
    assert result.returncode == 2, result.stderr
    assert "1.0.0" in result.stderr and "1.1.0" in result.stderr and "Traceback" not in result.stderr

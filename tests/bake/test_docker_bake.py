"""Real images on the real Docker Engine: labels, user, healthcheck, the engine bytes inside, and the
version check that runs before anything is built."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from tests.bake.conftest import DEBIAN_PYTHON, FIXTURES, image_tag, metadata_for
from trtbuild.bake import BakeRequest, TritonOptions, bake, prepare
from trtbuild.bake.render import HealthCheck
from trtbuild.bake.versions import probe_base_version
from trtbuild.errors import InputError

pytestmark = [pytest.mark.docker, pytest.mark.slow]

HASH = "sha256:" + "5e" * 32
FAST_HEALTH = HealthCheck(interval="1s", timeout="3s", start_period="1s", retries=3)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(client, image: str, *argv: str) -> str:
    return client.containers.run(image, list(argv), remove=True, network_disabled=True).decode().strip()


def wait_healthy(client, image: str, timeout: float = 60) -> tuple[str, list]:
    container = client.containers.run(image, detach=True, network_disabled=False)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            container.reload()
            health = container.attrs["State"].get("Health") or {}
            if health.get("Status") in ("healthy", "unhealthy") or container.status == "exited":
                return health.get("Status") or container.status, health.get("Log") or []
            time.sleep(0.5)
        return "timeout", []
    finally:
        logs = container.logs().decode(errors="replace")
        container.remove(force=True)
        print(logs)


def test_probe_reads_the_base_version(docker_client, base_image_factory):
    assert probe_base_version(docker_client, base_image_factory("1.0.0")) == (
        "1.0.0",
        "probe container (importlib.metadata)",
    )
    labelled = base_image_factory("1.0.0", labels={"ai.trtbuild.trtllm_version": "1.0.0"})
    assert probe_base_version(docker_client, labelled) == ("1.0.0", "label ai.trtbuild.trtllm_version")
    with pytest.raises(InputError, match="has no tensorrt_llm Python distribution"):
        probe_base_version(docker_client, DEBIAN_PYTHON)


def test_trtllm_serve_image(docker_client, base_image_factory, engine_factory):
    base = base_image_factory("1.0.0")
    engine = engine_factory(rank_bytes=1 << 20)
    tag = image_tag("serve")
    lines: list[str] = []
    result = bake(
        BakeRequest(
            engine_dir=engine,
            metadata=metadata_for(),
            template="trtllm-serve",
            tag=tag,
            base_image=base,
            artifact_hash=HASH,
            artifact_name="llama-8b:fp8",
            health=FAST_HEALTH,
        ),
        client=docker_client,
        progress=lines.append,
    )
    assert result.base_trtllm_version == "1.0.0" and result.base_version_source.startswith("probe")
    assert any("Step" in line for line in lines), "build progress was streamed"
    image = docker_client.images.get(tag)
    assert image.id == result.image_id
    cfg = image.attrs["Config"]
    labels = cfg["Labels"]
    assert labels["ai.trtbuild.artifact"] == HASH
    assert labels["ai.trtbuild.trtllm_version"] == "1.0.0"
    assert labels["ai.trtbuild.gpu_arch"] == "sm90"
    assert labels["ai.trtbuild.recipe_digest"] == "sha256:" + "1" * 64
    assert labels["org.opencontainers.image.title"] == "llama-8b:fp8"
    assert labels["org.opencontainers.image.base.name"] == base
    assert cfg["User"] == "10001:10001"
    assert cfg["Healthcheck"]["Test"][:2] == ["CMD", "python3"]
    assert "http://127.0.0.1:8000/health" in cfg["Healthcheck"]["Test"][-1]
    assert cfg["Cmd"][:5] == [
        "trtllm-serve",
        "/opt/trtbuild/engine",
        "--tokenizer",
        "/opt/trtbuild/tokenizer",
        "--backend",
    ]
    # the engine inside is byte-identical, owned by root and not writable by the serving user
    inside = run(
        docker_client,
        tag,
        "sha256sum",
        "/opt/trtbuild/engine/rank0.engine",
        "/opt/trtbuild/engine/config.json",
    )
    digests = {line.split()[1]: line.split()[0] for line in inside.splitlines()}
    assert digests["/opt/trtbuild/engine/rank0.engine"] == sha256(engine / "rank0.engine")
    assert digests["/opt/trtbuild/engine/config.json"] == sha256(engine / "config.json")
    assert run(docker_client, tag, "id", "-u") == "10001"
    assert (
        run(docker_client, tag, "sh", "-c", "test -w /opt/trtbuild/engine/rank0.engine && echo rw || echo ro")
        == "ro"
    )
    assert json.loads(run(docker_client, tag, "cat", "/opt/trtbuild/artifact.json"))["hash"] == HASH
    assert run(docker_client, tag, "ls", "/opt/trtbuild/tokenizer") == "tokenizer.json\ntokenizer_config.json"
    # the stand-in server accepts exactly the real flags and the engine; the HEALTHCHECK sees it come up
    status, log = wait_healthy(docker_client, tag)
    assert status == "healthy", log


def test_triton_image_fills_the_model_repo_in_the_image(docker_client, base_image_factory, engine_factory):
    base = base_image_factory("1.0.0")
    engine = engine_factory(max_batch_size=32, max_beam_width=2)
    tag = image_tag("triton")
    result = bake(
        BakeRequest(
            engine_dir=engine,
            metadata=metadata_for(max_batch_size=32, max_beam_width=2),
            template="triton",
            tag=tag,
            base_image=base,
            artifact_hash=HASH,
            health=FAST_HEALTH,
            triton=TritonOptions(triton_max_batch_size=16),
        ),
        client=docker_client,
    )
    cfg = docker_client.images.get(result.image_id).attrs["Config"]
    assert cfg["User"] == "10001:10001" and cfg["Labels"]["ai.trtbuild.template"] == "triton"
    assert "/v2/health/ready" in cfg["Healthcheck"]["Test"][-1]
    trt = run(docker_client, tag, "cat", "/opt/trtbuild/model_repo/tensorrt_llm/config.pbtxt")
    assert "max_batch_size: 16" in trt and 'string_value: "2"' in trt
    assert 'key: "gpt_model_path" value: { string_value: "/opt/trtbuild/engine" }' in trt
    assert "decoupled: true" in trt and "inflight_fused_batching" in trt
    models = run(docker_client, tag, "ls", "/opt/trtbuild/model_repo")
    assert models.split() == ["ensemble", "postprocessing", "preprocessing", "tensorrt_llm"]
    status, log = wait_healthy(docker_client, tag)
    assert status == "healthy", log


def test_triton_image_from_local_templates(docker_client, base_image_factory, engine_factory):
    tag = image_tag("triton-local")
    bake(
        BakeRequest(
            engine_dir=engine_factory(),
            metadata=metadata_for(),
            template="triton",
            tag=tag,
            base_image=base_image_factory("1.0.0"),
            triton_templates=FIXTURES / "base" / "all_models" / "inflight_batcher_llm",
        ),
        client=docker_client,
    )
    assert "max_batch_size: 64" in run(
        docker_client, tag, "cat", "/opt/trtbuild/model_repo/ensemble/config.pbtxt"
    )


def test_version_mismatch_is_refused_before_building(
    docker_client, base_image_factory, engine_factory, tmp_path
):
    base = base_image_factory("1.1.0")
    tag = image_tag("mismatch")
    with pytest.raises(InputError) as err:
        bake(
            BakeRequest(
                engine_dir=engine_factory(version="1.0.0"),
                metadata=metadata_for("1.0.0"),
                template="trtllm-serve",
                tag=tag,
                base_image=base,
            ),
            client=docker_client,
            context_dir=tmp_path / "ctx",
        )
    message = str(err.value)
    assert err.value.exit_code == 2
    # the shared runtime rule's words (registry.compat.runtime_verdict): both versions, and why
    assert "TensorRT-LLM 1.0.0 != base image" in message and "1.1.0" in message
    assert "serialization version" in message
    assert not docker_client.images.list(name=tag)
    assert not (tmp_path / "ctx").exists(), "nothing was staged"


def test_missing_base_without_pull(docker_client, engine_factory, tmp_path):
    with pytest.raises(InputError, match="is not present locally"):
        prepare(
            BakeRequest(
                engine_dir=engine_factory(),
                metadata=metadata_for(),
                template="trtllm-serve",
                base_image="trtbuild-test/bake:absent-base",
                pull_base=False,
            ),
            tmp_path / "ctx",
            client=docker_client,
        )


def test_push_to_a_registry(docker_client, base_image_factory, engine_factory, oci_registry):
    import urllib.request

    tag = f"{oci_registry}/{image_tag('push')}"
    try:
        result = bake(
            BakeRequest(
                engine_dir=engine_factory(),
                metadata=metadata_for(),
                template="trtllm-serve",
                tag=tag,
                base_image=base_image_factory("1.0.0"),
                artifact_hash=HASH,
            ),
            client=docker_client,
            push=True,
        )
        assert result.pushed_digest and result.pushed_digest.startswith("sha256:")
        repo, _, ref = tag.partition("/")[2].rpartition(":")
        req = urllib.request.Request(
            f"http://{oci_registry}/v2/{repo}/manifests/{ref}",
            method="HEAD",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.headers["Docker-Content-Digest"] == result.pushed_digest
    finally:
        for image in docker_client.images.list(name=tag.rsplit(":", 1)[0]):
            docker_client.images.remove(image.id, force=True)


def test_triton_base_without_backend_templates_fails_the_build_plainly(
    docker_client, base_image_factory, engine_factory, tmp_path
):
    from io import BytesIO

    from trtbuild.errors import StepFailed

    bare = image_tag("base-no-templates")
    dockerfile = f"FROM {base_image_factory('1.0.0')}\nRUN rm -rf /app/all_models\n".encode()
    docker_client.images.build(fileobj=BytesIO(dockerfile), tag=bare, rm=True, pull=False)
    with pytest.raises(StepFailed) as err:
        bake(
            BakeRequest(
                engine_dir=engine_factory(),
                metadata=metadata_for(),
                template="triton",
                tag=image_tag("triton-bare"),
                base_image=bare,
            ),
            client=docker_client,
        )
    assert err.value.exit_code == 1
    assert "not an inflight_batcher_llm template directory" in str(err.value)
    assert "fill_model_repo: error:" in str(err.value) and "--triton-templates DIR" in str(err.value)

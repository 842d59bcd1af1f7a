"""Fixtures for the bake tests: engine directories in the real layout, and test serving base images built
on the real Docker Engine from ``trtbuild-test/debian-python:bookworm``.

Environment: DOCKER_HOST (optional; default the local socket). Without a Docker Engine the docker tests
skip, except under CI=true where they fail. Every image they create is tagged ``trtbuild-test/bake-*`` and
removed at the end of the session.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.api import EngineMetadata

FIXTURES = Path(__file__).parent / "fixtures"
DEBIAN_PYTHON = "trtbuild-test/debian-python:bookworm"
TEST_REPO = "trtbuild-test/bake"
SESSION = uuid.uuid4().hex[:8]


def write_engine(
    root: Path,
    *,
    version: str = "1.0.0",
    tp: int = 1,
    pp: int = 1,
    max_batch_size: int = 64,
    max_beam_width: int = 1,
    tokenizer: bool = True,
    rank_bytes: int = 4096,
) -> Path:
    """An engine directory as trtllm-build + trtbuild write it (config.json, rank<N>.engine, tokenizer/)."""
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "version": version,
        "pretrained_config": {
            "architecture": "LlamaForCausalLM",
            "dtype": "float16",
            "mapping": {"world_size": tp * pp, "tp_size": tp, "pp_size": pp},
            "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"},
        },
        "build_config": {
            "max_input_len": 1024,
            "max_seq_len": 4096,
            "max_batch_size": max_batch_size,
            "max_beam_width": max_beam_width,
            "max_num_tokens": 8192,
            "opt_batch_size": 8,
            "plugin_config": {"gpt_attention_plugin": "auto", "paged_kv_cache": True},
        },
    }
    (root / "config.json").write_text(json.dumps(config, indent=4), "utf-8")
    for rank in range(tp * pp):
        (root / f"rank{rank}.engine").write_bytes(os.urandom(rank_bytes))
    if tokenizer:
        (root / "tokenizer").mkdir(exist_ok=True)
        (root / "tokenizer" / "tokenizer.json").write_text(
            '{"version": "1.0", "model": {"type": "BPE"}}', "utf-8"
        )
        (root / "tokenizer" / "tokenizer_config.json").write_text('{"bos_token": "<s>"}', "utf-8")
    return root


def metadata_for(version: str = "1.0.0", **extra: Any) -> EngineMetadata:
    """Engine metadata as the builder publishes it (the registry's typed contract)."""
    fields: dict[str, Any] = {
        "trtllm_version": version,
        "gpu_arch": "sm90",
        "tp": 1,
        "pp": 1,
        "max_batch_size": 64,
        "max_beam_width": 1,
        "quant_format": "fp8",
        "recipe_digest": "sha256:" + "1" * 64,
        "model_source": "hf://meta-llama/Llama-3.1-8B-Instruct",
        "model_revision": "0" * 40,
        "toolchain_image": "nvcr.io/nvidia/tensorrt-llm/release:" + version,
    }
    fields.update(extra)
    return EngineMetadata(**fields)


@pytest.fixture
def engine_factory(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))
    return lambda **kw: write_engine(tmp_path / f"engine{next(counter)}", **kw)


@pytest.fixture(scope="session")
def docker_client():
    try:
        import docker

        client = docker.from_env()
        client.ping()
        client.images.get(DEBIAN_PYTHON)
    except Exception as exc:  # noqa: BLE001 - any reason the engine or the base is missing
        if os.environ.get("CI") == "true":
            pytest.fail(f"Docker Engine with {DEBIAN_PYTHON} required in CI: {exc}")
        pytest.skip(f"Docker Engine with {DEBIAN_PYTHON} not available: {exc}")
    yield client
    ours = [tag for image in client.images.list(name=TEST_REPO) for tag in image.tags if SESSION in tag]
    # children first: removing a base that still has child images would only untag it and leave it dangling
    for tag in sorted(ours, key=lambda t: ":base-" in t):
        client.images.remove(tag, force=True)


def image_tag(kind: str) -> str:
    """A session-unique tag under trtbuild-test/ (removed by the docker_client fixture)."""
    return f"{TEST_REPO}:{kind}-{SESSION}"


@pytest.fixture(scope="session")
def base_image_factory(docker_client) -> Iterator[Callable[..., str]]:
    """Build (once per version) the test serving base: debian-python + tensorrt_llm dist-info
    of ``version``."""
    built: dict[tuple[str, tuple], str] = {}

    def make(version: str, labels: dict[str, str] | None = None) -> str:
        key = (version, tuple(sorted((labels or {}).items())))
        if key not in built:
            tag = image_tag(f"base-{version}-{len(built)}")
            docker_client.images.build(
                path=str(FIXTURES / "base"),
                tag=tag,
                buildargs={"TRTLLM_VERSION": version},
                labels=labels or {},
                rm=True,
                forcerm=True,
                pull=False,
            )
            built[key] = tag
        return built[key]

    yield make


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory) -> Iterator[str]:
    """host:port of an OCI registry on 127.0.0.1: $TRTBUILD_TEST_REGISTRY, or one started by
    tests/services/bake-registry.sh for this session (stopped by PID afterwards)."""
    import shutil
    import subprocess

    existing = os.environ.get("TRTBUILD_TEST_REGISTRY")
    if existing:
        yield existing
        return
    if shutil.which("docker-registry") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-registry (Debian package) required in CI for the push test")
        pytest.skip("docker-registry not installed")
    script = Path(__file__).resolve().parents[1] / "services" / "bake-registry.sh"
    workdir = tmp_path_factory.mktemp("registry")
    out = subprocess.run(
        ["bash", str(script), "start", str(workdir)], capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        pytest.fail(f"could not start the test registry: {out.stderr}")
    try:
        yield out.stdout.strip()
    finally:
        subprocess.run(["bash", str(script), "stop", str(workdir)], timeout=30)

"""A backend = "pytorch" recipe end to end on the real Docker Engine with the PyTorch-backend toolchain
double: validate, plan, build (trtbuild's ModelOpt driver exports a unified HF checkpoint inside the
double, host torch + ModelOpt mounted read-only), publish, a serve-only change that never re-quantizes,
resolve with its refusals, pull, the double's trtllm-serve accepting checkpoint + config, and bake
(context and a real image that turns healthy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.quantize.conftest import require_stack
from tests.toolchain_double.fixture import host_python_mounts
from tests.toolchain_double.pytorch_fixture import pytorch_double, write_pytorch_toolchains_toml  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.quantize, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
HOST = [
    "--gpu-arch",
    "sm90",
    "--gpus",
    "1",
    "--gpu-mem-gib",
    "80",
    "--trtllm",
    "1.3.0rc26",
    "--driver",
    "580.65.06",
]


@pytest.fixture(scope="module")
def quant_model(tmp_path_factory):
    require_stack()
    from tests.tiny_models import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("pt-model") / "tiny-llama")


class Project:
    def __init__(self, root: Path, ref: str, model: Path, ulimits) -> None:
        self.root, self.ref, self.model = root, ref, model
        toolchains = write_pytorch_toolchains_toml(root / "toolchains.toml", ref)
        self.env = {
            **os.environ,
            "TRTBUILD_TOOLCHAINS": str(toolchains),
            "TRTBUILD_HOME": str(root / "home"),
            "TRTBUILD_DB_URL": f"sqlite:///{root / 'registry.db'}",
            "TRTBUILD_STORE_URL": f"file://{root / 'store'}",
        }
        mounts, env = host_python_mounts()
        self.flags = [
            "--gpus",
            "0",
            *[a for m in mounts for a in ("--mount", f"{m.source}:{m.target}:ro")],
            "--env",
            f"PYTHONPATH={env['PYTHONPATH']}",
        ]
        if ulimits is not None:
            self.flags += ["--memlock-limit", str(ulimits["memlock"][0])]

    def recipe(self, max_batch_size: int = 8, tp: int = 1) -> Path:
        path = self.root / "pt.toml"
        path.write_text(f"""name = "tiny-pytorch"
[model]
source = "file://{self.model}"
dtype = "float16"
[quantization]
format = "fp8"
kv_cache = "fp8"
device = "cpu"
[quantization.calibration]
samples = 8
max_seq_len = 64
batch_size = 4
[target]
gpu_arch = "sm90"
toolchain = "double-1.3.0rc26"
backend = "pytorch"
[serve]
tensor_parallel_size = {tp}
max_batch_size = {max_batch_size}
max_seq_len = 128
enable_chunked_prefill = true
[serve.kv_cache_config]
free_gpu_memory_fraction = 0.8
""")
        return path

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "trtbuild", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def json(self, *args: str) -> dict:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def project(tmp_path, pytorch_double, quant_model, engine_ulimits):  # noqa: F811
    return Project(tmp_path, pytorch_double, quant_model, engine_ulimits)


def test_pytorch_recipe_builds_publishes_resolves_and_bakes(project, docker_client):
    recipe = project.recipe()
    assert project.cli("validate", str(recipe)).returncode == 0
    plan = project.json("plan", str(recipe))
    assert plan["backend"] == "pytorch"

    first = project.json("build", str(recipe), *project.flags)
    assert first["steps_run"] == ["quantize", "verify", "publish-checkpoint", "serve-config", "publish"]
    assert first["kind"] == "serve-config" and first["serve_config_key"] == plan["serve_config_key"]
    (ckpt,) = project.json("ls", "--kind", "hf-checkpoint")
    assert ckpt["build_key"] == first["checkpoint_key"] == plan["checkpoint_key"]
    shown = project.json("show", first["hash"])
    assert (
        shown["metadata"]["checkpoint"] == ckpt["hash"] and shown["metadata"]["trtllm_version"] == "1.3.0rc26"
    )
    assert shown["metadata"]["quant_format"] == "fp8" and shown["metadata"]["kv_bytes_per_token"] > 0

    # a serve-only change: a new config, the same checkpoint, no container, no quantization
    t0 = time.monotonic()
    second = project.json("build", str(project.recipe(max_batch_size=16)), *project.flags)
    serve_only_s = time.monotonic() - t0
    assert second["steps_run"] == ["serve-config", "publish"], second
    assert second["checkpoint_key"] == first["checkpoint_key"] and second["hash"] != first["hash"]
    assert project.json("build", str(recipe), *project.flags)["cache_hit"] is True
    print(f"serve-only rebuild: {serve_only_s:.2f} s")

    # resolve: the newest config fits this host; a mismatched host is refused with the reason
    best = project.json("resolve", "tiny-pytorch", "--kind", "serve-config", *HOST)
    assert best["best"]["hash"] == second["hash"]
    for flags, words in (
        (["--trtllm", "1.3.0rc25"], "validated for 1.3.0rc26"),
        (["--gpu-arch", "sm80"], "arch family"),
        (["--gpu-mem-gib", "1"], "GiB KV"),
    ):
        host = [*HOST]
        host[host.index(flags[0]) + 1] = flags[1]
        refused = project.cli("resolve", "tiny-pytorch", "--kind", "serve-config", *host)
        assert refused.returncode == 1 and words in refused.stderr, refused.stderr

    # pull config + checkpoint; the double's trtllm-serve accepts both (layout + recorded LLM-API keys)
    dest, ckpt_dest = project.root / "cfg", project.root / "ckpt"
    pulled = project.json("pull", first["hash"], str(dest), "--checkpoint-dest", str(ckpt_dest))
    assert pulled["checkpoint"] == ckpt["hash"]
    assert (ckpt_dest / "hf_quant_config.json").is_file() and (ckpt_dest / "model.safetensors").is_file()
    out = docker_client.containers.run(
        project.ref,
        ["trtllm-serve", "/ckpt", "--host", "0.0.0.0", "--port", "8000", "--config", "/cfg/config.yaml"],
        volumes={str(ckpt_dest): {"bind": "/ckpt", "mode": "ro"}, str(dest): {"bind": "/cfg", "mode": "ro"}},
        environment={"TOOLCHAIN_DOUBLE_SERVE_CHECK_ONLY": "1"},
        remove=True,
        network_disabled=True,
        stderr=True,
    ).decode()
    assert "config keys" in out and "enable_chunked_prefill" in out

    # bake: the build context, then a real image that turns healthy
    ctx = project.root / "ctx"
    baked = project.json(
        "bake", "tiny-pytorch:latest", "--template", "trtllm-serve", "--context-only", str(ctx)
    )
    dockerfile = (ctx / "Dockerfile").read_text()
    repo = project.ref.split("@", 1)[0]
    assert f"FROM {repo}@" in dockerfile or f"FROM {repo}:" in dockerfile, dockerfile[:400]
    assert (
        '"trtllm-serve", "/opt/trtbuild/checkpoint"' in dockerfile
        and '"--config", "/opt/trtbuild/config.yaml"' in dockerfile
    )
    import yaml

    assert yaml.safe_load((ctx / "config.yaml").read_text())["max_batch_size"] == 16
    assert (ctx / "checkpoint" / "hf_quant_config.json").is_file()
    assert baked["labels"]["ai.trtbuild.checkpoint"] == ckpt["hash"]
    triton = project.root / "triton"
    project.json(
        "bake",
        "tiny-pytorch:latest",
        "--template",
        "triton",
        "--base",
        project.ref,
        "--context-only",
        str(triton),
        "--no-base-check",
    )
    model_yaml = yaml.safe_load((triton / "model.yaml").read_text())
    assert model_yaml["model"] == "/opt/trtbuild/checkpoint" and model_yaml["backend"] == "pytorch"
    assert model_yaml["max_batch_size"] == 16 and set(model_yaml["triton_config"]) == {
        "max_batch_size",
        "decoupled",
    }

    _bake_and_run(project, docker_client, second["hash"])


def _bake_and_run(project, client, serve_hash: str) -> None:
    from registry.api import Registry
    from tests.bake.test_docker_bake import FAST_HEALTH, wait_healthy
    from trtbuild.bake.pytorch import PytorchBakeRequest, bake_pytorch

    reg = Registry.open(project.env["TRTBUILD_DB_URL"], project.env["TRTBUILD_STORE_URL"])
    art = reg.pull(serve_hash, project.root / "img" / "config")
    reg.pull(art.metadata.checkpoint, project.root / "img" / "checkpoint")
    tag = f"trtbuild-test/bake-pytorch-{uuid.uuid4().hex[:8]}:test"
    try:
        result = bake_pytorch(
            PytorchBakeRequest(
                config_dir=project.root / "img" / "config",
                checkpoint_dir=project.root / "img" / "checkpoint",
                metadata=art.metadata,
                template="trtllm-serve",
                artifact_hash=art.hash,
                artifact_name=art.name,
                tag=tag,
                health=FAST_HEALTH,
            ),
            context_dir=project.root / "img" / "ctx",
            client=client,
        )
        assert result.base_trtllm_version == "1.3.0rc26"
        status, log = wait_healthy(client, tag)
        assert status == "healthy", log
        assert client.images.get(tag).labels["ai.trtbuild.artifact"] == art.hash
    finally:
        try:
            client.images.remove(tag, force=True)
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass

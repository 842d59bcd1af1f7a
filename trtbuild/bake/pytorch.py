"""``bake`` for PyTorch-backend artifacts: a serve config + the HF checkpoint it points at -> serving image.

Context layout::

    Dockerfile
    checkpoint/             the hf-checkpoint artifact (hard links when possible)
    config.yaml             trtllm-serve: the serve config (--config)
    model.yaml              triton: the LLM-API backend's model.yaml (model, backend, the serve options,
                            triton_config)
    trtbuild-artifact.json  serve-config hash, name and metadata, and the checkpoint hash
    autotuner/              (when caches are given) one folder per (GPU, SM) + index.json + the selector

Checked before anything is written: the config is the one the metadata describes, the checkpoint is the one
it points at, the port; then (unless skipped) the base image's TensorRT-LLM version must be the version the
config was checked against.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.api import AutotunerCacheMetadata, ServeConfigMetadata, runtime_verdict
from trtbuild.bake import render
from trtbuild.bake.pipeline import RELEASE_IMAGE, BakeResult, build_and_push, require_tag
from trtbuild.bake.versions import NOT_CHECKED, VERSION_LABEL, checked_base
from trtbuild.build.serve_config import CONFIG_YAML, read_config_yaml
from trtbuild.errors import InputError

CHECKPOINT_PATH = f"{render.IMAGE_ROOT}/checkpoint"
CONFIG_PATH = f"{render.IMAGE_ROOT}/config.yaml"
AUTOTUNER_PATH = f"{render.IMAGE_ROOT}/autotuner"
SELECTOR = "select_autotuner_cache.py"
LLMAPI_TEMPLATES_IN_IMAGE = "/app/all_models/llmapi"  # triton_backend/all_models copied under /app
TEMPLATE_FILES = {"trtllm-serve": "trtllm-serve-pytorch", "triton": "triton-llmapi"}
SKIP = (".trtbuild-artifact.json",)  # registry bookkeeping in a pulled directory


@dataclass
class PytorchBakeRequest:
    config_dir: Path
    checkpoint_dir: Path
    metadata: ServeConfigMetadata  # the serve-config artifact's metadata
    template: str  # trtllm-serve | triton
    artifact_hash: str | None = None
    artifact_name: str | None = None
    tag: str | None = None
    base_image: str | None = None
    port: int = 8000
    decoupled: bool = True
    health: render.HealthCheck = field(default_factory=render.HealthCheck)
    pull_base: bool = True
    check_base: bool = True
    user_uid: int = 10001
    caches: list[tuple[AutotunerCacheMetadata, Path]] = field(default_factory=list)


def _check_inputs(req: PytorchBakeRequest) -> tuple[ServeConfigMetadata, dict[str, Any]]:
    meta = req.metadata
    if not isinstance(meta, ServeConfigMetadata) or not (meta.checkpoint and meta.trtllm_version):
        raise InputError(
            "the artifact is not a serve config with a checkpoint and a TensorRT-LLM version",
            hint="bake a serve config (what `trtbuild build` publishes for a pytorch recipe)",
        )
    config_file = req.config_dir / CONFIG_YAML
    try:
        config = read_config_yaml(config_file)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{config_file}: cannot read the serve config ({exc})", hint="re-pull the artifact"
        ) from None
    marker = req.checkpoint_dir / ".trtbuild-artifact.json"
    pulled = json.loads(marker.read_text("utf-8")).get("hash") if marker.is_file() else None
    if pulled is not None and pulled != meta.checkpoint:
        raise InputError(
            f"{req.checkpoint_dir} holds checkpoint {pulled}, the serve config points at {meta.checkpoint}",
            hint="pull the checkpoint the serve config names",
        )
    if not (req.checkpoint_dir / "config.json").is_file():
        raise InputError(
            f"{req.checkpoint_dir}: not a Hugging Face checkpoint (no config.json)", hint="re-pull it"
        )
    if not 0 < req.port < 65536:
        raise InputError(f"--port must be 1-65535 (got {req.port})", hint="e.g. --port 8000")
    if req.template not in TEMPLATE_FILES:
        raise InputError(f"unknown template {req.template!r}", hint=f"use one of {', '.join(TEMPLATE_FILES)}")
    return meta, config


def choose_pytorch_base(template: str, explicit: str | None, meta: ServeConfigMetadata) -> str:
    """--base, else (trtllm-serve) the release image of the recipe's toolchain (it ships trtllm-serve:
    docker/release.md), else the NGC release image of the version. Triton needs --base: the tags of NGC's
    Triton TensorRT-LLM images are not verified anywhere."""
    if explicit:
        return explicit
    if template == "trtllm-serve":
        return meta.toolchain_image or RELEASE_IMAGE.format(version=meta.trtllm_version)
    raise InputError(
        f"no Triton image is pinned for TensorRT-LLM {meta.trtllm_version} (the NGC tag that carries the "
        "LLM-API backend of each release is not verified)",
        hint="pass --base with the Triton TensorRT-LLM image of that release (its version is checked)",
    )


def serve_argv(port: int) -> list[str]:
    """The server's command line: the checkpoint, where to listen, and the config (nothing else: every
    option lives in the config, where it was checked)."""
    return [
        "trtllm-serve",
        CHECKPOINT_PATH,
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--config",
        CONFIG_PATH,
    ]


def model_yaml(config: dict[str, Any], meta: ServeConfigMetadata, decoupled: bool) -> dict[str, Any]:
    """model.yaml of the LLM-API Triton backend (model.py: every key but triton_config goes to LLM())."""
    # max_batch_size 0: upstream's model.yaml says its implementation does not support Triton-side batching
    return {
        "model": CHECKPOINT_PATH,
        "backend": "pytorch",
        **config,
        "tensor_parallel_size": meta.tp,
        "pipeline_parallel_size": meta.pp,
        "triton_config": {"max_batch_size": 0, "decoupled": decoupled},
    }


def _labels(
    req: PytorchBakeRequest, meta: ServeConfigMetadata, base: str, base_digest: str | None
) -> dict[str, str]:
    values: dict[str, Any] = {
        "org.opencontainers.image.title": req.artifact_name or meta.recipe_name,
        "org.opencontainers.image.description": f"{req.template} serving image for serve config "
        f"{req.artifact_hash or '(unregistered)'} (PyTorch backend)",
        "org.opencontainers.image.base.name": base,
        "org.opencontainers.image.base.digest": base_digest.split("@", 1)[1]
        if base_digest and "@" in base_digest
        else None,
        "ai.trtbuild.artifact": req.artifact_hash,
        "ai.trtbuild.artifact.name": req.artifact_name,
        "ai.trtbuild.template": req.template,
        "ai.trtbuild.backend": "pytorch",
        "ai.trtbuild.checkpoint": meta.checkpoint,
        VERSION_LABEL: meta.trtllm_version,
        "ai.trtbuild.gpu_arch": meta.gpu_arch,
        "ai.trtbuild.tp": meta.tp,
        "ai.trtbuild.pp": meta.pp,
        "ai.trtbuild.quant_format": meta.quant_format,
        "ai.trtbuild.model_source": meta.model_source,
        "ai.trtbuild.model_revision": meta.model_revision,
        "ai.trtbuild.autotuner_caches": len(req.caches) or None,
    }
    return {k: str(v) for k, v in values.items() if v is not None and v != ""}


def _variables(
    req: PytorchBakeRequest, meta: ServeConfigMetadata, base: str, labels: dict[str, str]
) -> dict[str, Any]:
    command = serve_argv(req.port)
    if req.caches:
        command = ["python3", f"{AUTOTUNER_PATH}/{SELECTOR}", *command]
    return {
        "template": req.template,
        "artifact_hash": req.artifact_hash or "(unregistered)",
        "base_image": base,
        "user": {"name": "trtbuild", "uid": req.user_uid, "home": "/home/trtbuild"},
        "checkpoint_path": CHECKPOINT_PATH,
        "config_path": CONFIG_PATH,
        "artifact_json_path": f"{render.IMAGE_ROOT}/artifact.json",
        "autotuner": bool(req.caches),
        "autotuner_path": AUTOTUNER_PATH,
        "model_repo_path": render.MODEL_REPO_PATH,
        "templates_dir": LLMAPI_TEMPLATES_IN_IMAGE,
        "trtllm_version": meta.trtllm_version,
        "labels": labels,
        "health": req.health,
        "port": req.port,
        "command": command,
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower()


def stage_caches(caches: list[tuple[AutotunerCacheMetadata, Path]], dest: Path) -> None:
    """autotuner/<gpu>-<sm>/... per cache, index.json [{gpu_name, gpu_arch, dir, cache_file}] and the
    selector script (stdlib; picks the entry whose GPU name and SM equal the host's nvidia-smi)."""
    dest.mkdir()
    index = []
    for meta, src in caches:
        sub = _slug(f"{meta.gpu_name}-{meta.gpu_arch}")
        render.stage_tree(src, dest / sub, skip=SKIP)
        index.append(
            {"gpu_name": meta.gpu_name, "gpu_arch": meta.gpu_arch, "dir": sub, "cache_file": meta.cache_file}
        )
    (dest / "index.json").write_text(json.dumps(index, indent=2) + "\n", "utf-8")
    shutil.copyfile(Path(__file__).with_name(SELECTOR), dest / SELECTOR)


def prepare_pytorch(
    req: PytorchBakeRequest, context_dir: Path, *, client: Any = None, progress: Any = lambda line: None
) -> BakeResult:
    """Check everything, then write the build context into ``context_dir`` (new or empty)."""
    meta, config = _check_inputs(req)
    base = choose_pytorch_base(req.template, req.base_image, meta)
    template = TEMPLATE_FILES[req.template]
    labels = _labels(req, meta, base, None)
    render.render_dockerfile(template, _variables(req, meta, base, labels))  # a template error costs nothing
    base_version: str | None = None
    how = NOT_CHECKED
    if req.check_base:

        def check(version: str, how: str) -> None:
            if not runtime_verdict(meta.trtllm_version, version, f"base image {base}").ok:
                raise InputError(
                    f"base image {base} has TensorRT-LLM {version} ({how}) but the serve config was checked "
                    f"against the LLM-API options of {meta.trtllm_version}: options may be unknown or mean "
                    "something else there",
                    hint=f"use a base with TensorRT-LLM {meta.trtllm_version}, or rebuild the recipe with "
                    "the toolchain of the base",
                )

        base_version, how, base_digest = checked_base(
            client, base, pull=req.pull_base, check=check, progress=progress
        )
        labels = _labels(req, meta, base, base_digest)
    context = render.prepare_context_dir(context_dir)
    render.stage_tree(req.checkpoint_dir, context / "checkpoint", skip=SKIP)
    if req.template == "trtllm-serve":
        shutil.copyfile(req.config_dir / CONFIG_YAML, context / "config.yaml")
    else:  # JSON is YAML: model.py reads it with yaml.safe_load
        (context / "model.yaml").write_text(
            json.dumps(model_yaml(config, meta, req.decoupled), indent=2) + "\n"
        )
    if req.caches:
        stage_caches(req.caches, context / "autotuner")
    render.write_artifact_json(
        context,
        {
            "hash": req.artifact_hash,
            "name": req.artifact_name,
            "metadata": req.metadata.to_dict(),
            "checkpoint": meta.checkpoint,
            "trtllm_version": meta.trtllm_version,
        },
    )
    (context / "Dockerfile").write_text(
        render.render_dockerfile(template, _variables(req, meta, base, labels)), "utf-8"
    )
    return BakeResult(
        template=req.template,
        base_image=base,
        base_trtllm_version=base_version,
        base_version_source=how,
        context_dir=context,
        labels=labels,
    )


def bake_pytorch(
    req: PytorchBakeRequest,
    *,
    context_dir: Path,
    push: bool = False,
    client: Any = None,
    progress: Any = lambda line: None,
) -> BakeResult:
    """Prepare the context and build ``req.tag`` (push when asked)."""
    from trtbuild.docker_engine import docker_client

    tag = require_tag(req.tag)
    client = client or docker_client()
    result = prepare_pytorch(req, context_dir, client=client, progress=progress)
    return build_and_push(client, result, tag, push=push, progress=progress)

"""``bake``: engine directory + registry metadata -> serving image (or just its build context).

Order matters: everything that can be checked cheaply (engine layout, metadata, runtime limits, template
variables) is checked first, then the base image's TensorRT-LLM version (label or probe container), and
only then is the context written and the image built.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.bake import render
from trtbuild.bake.engine import EngineInfo, check_metadata, read_engine
from trtbuild.bake.serve import ServeOptions, serve_command
from trtbuild.bake.triton_repo import TritonOptions, fill_locally, substitutions, write_fill_inputs
from trtbuild.bake.versions import NOT_CHECKED, VERSION_LABEL, check_base_version, checked_base
from trtbuild.errors import InputError

if TYPE_CHECKING:
    from registry.api import EngineMetadata

RELEASE_IMAGE = "nvcr.io/nvidia/tensorrt-llm/release:{version}"  # docker/release.md: ships trtllm-serve
TRITON_TEMPLATES_IN_IMAGE = (
    "/app/all_models/inflight_batcher_llm"  # Dockerfile.triton.trt_llm_backend @0046c234
)


@dataclass
class BakeRequest:
    """Everything ``bake`` needs; ``engine_dir`` + ``metadata`` (+ hash, name, created_at) are what
    ``Registry.pull`` returns."""

    engine_dir: Path
    metadata: EngineMetadata
    template: str
    artifact_hash: str | None = None
    artifact_name: str | None = None
    created_at: datetime | None = None  # when the artifact was published (the image's "created" label)
    tag: str | None = None
    base_image: str | None = None
    tokenizer_dir: Path | None = None
    serve: ServeOptions = field(default_factory=ServeOptions)
    triton: TritonOptions = field(default_factory=TritonOptions)
    triton_templates: Path | None = None
    health: render.HealthCheck = field(default_factory=render.HealthCheck)
    pull_base: bool = True
    check_base: bool = True
    user_uid: int = 10001


@dataclass
class BakeResult:
    template: str
    base_image: str
    base_trtllm_version: str | None
    base_version_source: str
    context_dir: Path
    labels: dict[str, str]
    image_id: str | None = None
    tag: str | None = None
    pushed_digest: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "base_image": self.base_image,
            "base_trtllm_version": self.base_trtllm_version,
            "base_version_source": self.base_version_source,
            "context_dir": str(self.context_dir),
            "labels": self.labels,
            "image_id": self.image_id,
            "tag": self.tag,
            "pushed_digest": self.pushed_digest,
            "artifact": self.labels.get("ai.trtbuild.artifact"),
        }


def choose_base(template: str, explicit: str | None, info: EngineInfo, metadata: EngineMetadata) -> str:
    """--base, else (trtllm-serve) the release image that built the engine (it ships trtllm-serve:
    docker/release.md), else the NGC release image of the engine's version. Triton needs --base: the
    tags of NGC's Triton TensorRT-LLM images are not verified anywhere, so no pin records one."""
    if explicit:
        return explicit
    if template == "trtllm-serve":
        return metadata.toolchain_image or RELEASE_IMAGE.format(version=info.trtllm_version)
    raise InputError(
        f"no Triton TensorRT-LLM image is pinned for TensorRT-LLM {info.trtllm_version} "
        "(the NGC tritonserver tag that carries each backend release is not verified)",
        hint="pass --base with the Triton image whose TensorRT-LLM backend is "
        f"{info.trtllm_version} (its version is checked before building)",
    )


def image_labels(
    req: BakeRequest, info: EngineInfo, base_image: str, base_digest: str | None
) -> dict[str, str]:
    """OCI annotations plus trtbuild's own: enough to trace the image back to the artifact and its recipe."""
    meta = req.metadata
    title = req.artifact_name or "trtbuild engine"
    labels: dict[str, Any] = {
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.description": (
            f"{req.template} serving image for TensorRT-LLM engine {req.artifact_hash or '(unregistered)'}"
        ),
        "org.opencontainers.image.created": req.created_at.isoformat() if req.created_at else None,
        "org.opencontainers.image.base.name": base_image,
        "org.opencontainers.image.base.digest": (
            base_digest.split("@", 1)[1] if base_digest and "@" in base_digest else None
        ),
        "ai.trtbuild.artifact": req.artifact_hash,
        "ai.trtbuild.artifact.name": req.artifact_name,
        "ai.trtbuild.template": req.template,
        VERSION_LABEL: info.trtllm_version,
        "ai.trtbuild.gpu_arch": meta.gpu_arch,
        "ai.trtbuild.recipe_digest": meta.recipe_digest,
        "ai.trtbuild.tp": info.tp,
        "ai.trtbuild.pp": info.pp,
        "ai.trtbuild.max_batch_size": info.max_batch_size,
        "ai.trtbuild.max_beam_width": info.max_beam_width,
        "ai.trtbuild.quant_format": meta.quant_format or info.quant_algo,
        "ai.trtbuild.model_source": meta.model_source,
        "ai.trtbuild.model_revision": meta.model_revision,
        "ai.trtbuild.toolchain_image": meta.toolchain_image,
    }
    return {k: str(v) for k, v in labels.items() if v is not None and v != ""}


def render_variables(
    req: BakeRequest, info: EngineInfo, base_image: str, labels: dict[str, str], *, prefilled: bool
) -> dict[str, Any]:
    common = {
        "template": req.template,
        "artifact_hash": req.artifact_hash or "(unregistered)",
        "base_image": base_image,
        "user": {"name": "trtbuild", "uid": req.user_uid, "home": "/home/trtbuild"},
        "engine_path": render.ENGINE_PATH,
        "tokenizer_path": render.TOKENIZER_PATH,
        "artifact_json_path": f"{render.IMAGE_ROOT}/artifact.json",
        "labels": labels,
        "health": req.health,
    }
    if req.template == "trtllm-serve":
        command = serve_command(
            info, req.serve, engine_path=render.ENGINE_PATH, tokenizer_path=render.TOKENIZER_PATH
        )
        return {**common, "command": command, "port": req.serve.port}
    return {
        **common,
        "image_root": render.IMAGE_ROOT,
        "model_repo_path": render.MODEL_REPO_PATH,
        "templates_dir": TRITON_TEMPLATES_IN_IMAGE,
        "prefilled": prefilled,
        "world_size": info.world_size,
    }


def prepare(
    req: BakeRequest, context_dir: Path, *, client: Any = None, progress=lambda line: None
) -> BakeResult:
    """Check everything, then write the build context into ``context_dir`` (must be new or empty)."""
    if req.template not in render.TEMPLATES:
        raise InputError(
            f"unknown template {req.template!r}", hint=f"use one of {', '.join(render.TEMPLATES)}"
        )
    info = read_engine(req.engine_dir)
    check_metadata(info, req.metadata)
    tokenizer = Path(req.tokenizer_dir) if req.tokenizer_dir else None
    if tokenizer is not None and not tokenizer.is_dir():
        raise InputError(
            f"--tokenizer {tokenizer}: not a directory", hint="pass the model's tokenizer directory"
        )
    if tokenizer is None and not (req.engine_dir / "tokenizer").is_dir():
        raise InputError(
            f"{req.engine_dir}: the artifact has no tokenizer/ directory",
            hint="pass --tokenizer DIR (the model's tokenizer files)",
        )
    base_image = choose_base(req.template, req.base_image, info, req.metadata)

    triton_values = None
    if req.template == "triton":
        triton_values = substitutions(
            info, req.triton, engine_path=render.ENGINE_PATH, tokenizer_path=render.TOKENIZER_PATH
        )
    prefilled = req.triton_templates is not None
    # Render once with the final labels' shape before touching Docker: a template error costs nothing.
    labels = image_labels(req, info, base_image, None)
    render.render_dockerfile(
        req.template, render_variables(req, info, base_image, labels, prefilled=prefilled)
    )

    base_version: str | None = None
    how = NOT_CHECKED
    if req.check_base:
        base_version, how, base_digest = checked_base(
            client,
            base_image,
            pull=req.pull_base,
            check=lambda version, how: check_base_version(info.trtllm_version, base_image, version, how),
            progress=progress,
        )
        labels = image_labels(req, info, base_image, base_digest)

    context = render.prepare_context_dir(context_dir, req.engine_dir)
    render.stage_engine(req.engine_dir, context, tokenizer)
    render.write_artifact_json(
        context,
        {
            "hash": req.artifact_hash,
            "name": req.artifact_name,
            "created_at": req.created_at.isoformat() if req.created_at else None,
            "metadata": req.metadata.to_dict(),
            "trtllm_version": info.trtllm_version,
        },
    )
    if triton_values is not None:
        if req.triton_templates is not None:  # prefilled
            fill_locally(Path(req.triton_templates), triton_values, context / "model_repo")
        else:
            write_fill_inputs(context / "model_repo_fill", triton_values)
    dockerfile = render.render_dockerfile(
        req.template, render_variables(req, info, base_image, labels, prefilled=prefilled)
    )
    (context / "Dockerfile").write_text(dockerfile, "utf-8")
    return BakeResult(
        template=req.template,
        base_image=base_image,
        base_trtllm_version=base_version,
        base_version_source=how,
        context_dir=context,
        labels=labels,
    )


def bake(
    req: BakeRequest,
    *,
    context_dir: Path | None = None,
    push: bool = False,
    client: Any = None,
    progress=lambda line: None,
) -> BakeResult:
    """Prepare the context (a temporary one unless given) and build ``req.tag``; push when asked."""
    from trtbuild.docker_engine import docker_client

    tag = require_tag(req.tag)
    client = client or docker_client()
    with tempfile.TemporaryDirectory(prefix="trtbuild-bake-") as tmp:
        context = context_dir or Path(tmp) / "context"
        result = prepare(req, context, client=client, progress=progress)
        return build_and_push(client, result, tag, push=push, progress=progress)


def require_tag(tag: str | None) -> str:
    """The image tag a bake builds (``--tag``), checked against Docker's reference grammar."""
    from trtbuild.bake.build import check_tag

    if not tag:
        raise InputError(
            "--tag is required to build an image", hint="pass --tag IMAGE:TAG, or --context-only DIR"
        )
    return check_tag(tag)


def build_and_push(client: Any, result: BakeResult, tag: str, *, push: bool, progress: Any) -> BakeResult:
    """Build the prepared context of ``result`` as ``tag`` (both templates, both backends); push when
    asked. Fills the result's image id, tag and pushed digest."""
    from trtbuild.bake.build import build_image, push_image

    progress(f"building {tag} from {result.base_image}")
    result.image_id = build_image(client, result.context_dir, tag, progress=progress)
    result.tag = tag
    if push:
        progress(f"pushing {tag}")
        result.pushed_digest = push_image(client, tag, progress=progress)
    return result

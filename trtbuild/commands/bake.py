"""``trtbuild bake``: pull an engine by reference and bake it into a serving image."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from trtbuild.commands._common import print_json
from trtbuild.errors import InputError

TEMPLATE_CHOICES = ("trtllm-serve", "triton")


def _parse_params(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(
                f"--triton-param {item!r}: expected NAME=VALUE",
                hint="e.g. --triton-param enable_kv_cache_reuse=true",
            )
        out[name] = value
    return out


@dataclass
class _Record:
    """What bake knows of the artifact it bakes: its typed metadata, hash, name and publish time."""

    metadata: Any  # registry.api.EngineMetadata
    hash: str | None = None
    name: str | None = None
    created_at: datetime | None = None


def _local_artifact(metadata_file: Path | None) -> _Record:
    """For --from-dir: a JSON file shaped like the registry's artifact (``trtbuild show --json``:
    hash, name, created_at, metadata), or the engine metadata fields alone."""
    from registry.api import EngineMetadata, RegistryError

    if metadata_file is None:
        return _Record(EngineMetadata())
    try:
        data = json.loads(metadata_file.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            f"--metadata {metadata_file}: cannot read JSON ({exc})", hint="pass a JSON file"
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"--metadata {metadata_file}: expected a JSON object", hint='{"hash": ..., "metadata": {...}}'
        )
    record = {k: data.pop(k, None) for k in ("hash", "name", "created_at")}
    fields = data["metadata"] if isinstance(data.get("metadata"), dict) else data
    try:
        created = datetime.fromisoformat(record["created_at"]) if record["created_at"] else None
    except (TypeError, ValueError):
        raise InputError(
            f"--metadata {metadata_file}: created_at {record['created_at']!r} is not an ISO 8601 time",
            hint="use the created_at of `trtbuild show REF --json`",
        ) from None
    try:
        metadata = EngineMetadata.from_dict(fields)
    except RegistryError as exc:
        raise InputError(f"--metadata {metadata_file}: {exc.args[0]}", hint=exc.hint) from None
    return _Record(metadata, record["hash"], record["name"], created)


def _pull(ref: str, dest: Path) -> _Record:
    """Registry.pull (verified, atomic) of the engine REF into ``dest``."""
    from trtbuild.settings import open_registry

    art = open_registry().pull(ref, dest)
    if art.kind != "engine":
        raise InputError(
            f"{ref} is a {art.kind} artifact; bake takes engines", hint="pass an engine reference"
        )
    return _Record(art.metadata, art.hash, art.name, art.created_at)


def _kind_of(ref: str) -> str:
    from trtbuild.settings import open_registry

    return str(open_registry().get(ref).kind)


def _pytorch_request(ref: str, pulled: Path, opts: dict, port: int, decoupled: bool, progress: Any) -> Any:
    """Pull the serve config REF, the checkpoint it points at and the AutoTuner caches captured for it."""
    from registry.api import ServeConfigMetadata
    from trtbuild.bake.pytorch import PytorchBakeRequest
    from trtbuild.build.autotuner import caches_for
    from trtbuild.settings import open_registry

    reg = open_registry()
    progress(f"pulling {ref}")
    art = reg.pull(ref, pulled / "config")
    if not isinstance(art.metadata, ServeConfigMetadata):  # the tag moved since its kind was read
        raise InputError(f"{ref} is now a {art.kind} artifact, not a serve config", hint="bake it again")
    checkpoint = art.metadata.checkpoint
    progress(f"pulling its checkpoint {checkpoint}")
    reg.pull(str(checkpoint), pulled / "checkpoint")
    caches = []
    for meta, cache_ref in caches_for(reg, art):
        progress(f"pulling AutoTuner cache {cache_ref} ({meta.gpu_name})")
        dest = pulled / "autotuner" / cache_ref.split(":", 1)[1][:16]
        reg.pull(cache_ref, dest)
        caches.append((meta, dest))
    return PytorchBakeRequest(
        config_dir=pulled / "config",
        checkpoint_dir=pulled / "checkpoint",
        metadata=art.metadata,
        template=opts["template"],
        artifact_hash=art.hash,
        artifact_name=art.name,
        tag=opts["tag"],
        base_image=opts["base_image"],
        port=port,
        decoupled=decoupled,
        health=opts["health"],
        pull_base=opts["pull_base"],
        check_base=opts["check_base"],
        caches=caches,
    )


@click.command(
    "bake", epilog="Exit codes: 0 ok, 1 failure, 2 invalid input (bad reference, limits, version mismatch)."
)
@click.argument("ref", required=False)
@click.option(
    "--template",
    "template",
    type=click.Choice(TEMPLATE_CHOICES),
    required=True,
    help="Serving stack of the image.",
)
@click.option("--tag", help="Image reference to build, IMAGE:TAG (required unless --context-only).")
@click.option(
    "--base",
    help="Serving base image; trtllm-serve default: the release image that built the engine; "
    "triton: required.",
)
@click.option("--push", is_flag=True, help="Push --tag after building.")
@click.option(
    "--context-only",
    "context_only",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write the build context (Dockerfile, engine, tokenizer, model repo) to DIR; do not build.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option(
    "--from-dir",
    "from_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Bake a local engine directory (e.g. from `trtbuild pull`) instead of pulling REF.",
)
@click.option(
    "--metadata",
    "metadata_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="With --from-dir: artifact JSON (`trtbuild show --json`: hash, name, created_at, metadata).",
)
@click.option(
    "--tokenizer",
    "tokenizer",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Tokenizer directory, when the artifact has no tokenizer/.",
)
@click.option("--max-batch-size", type=int, help="Runtime max batch (default and ceiling: the engine's).")
@click.option(
    "--max-beam-width", type=int, help="Runtime max beam width (default and ceiling: the engine's)."
)
@click.option(
    "--kv-cache-free-gpu-mem-fraction",
    "kv_fraction",
    type=float,
    default=0.9,
    show_default=True,
    help="Fraction of free GPU memory for the KV cache.",
)
@click.option("--port", type=int, default=8000, show_default=True, help="trtllm-serve: HTTP port.")
@click.option(
    "--decoupled/--no-decoupled",
    default=True,
    show_default=True,
    help="triton: decoupled (streaming) transaction policy of tensorrt_llm.",
)
@click.option(
    "--batching-strategy",
    default="inflight_fused_batching",
    show_default=True,
    help="triton: gpt_model_type of the tensorrt_llm model.",
)
@click.option(
    "--batch-scheduler-policy",
    default="guaranteed_no_evict",
    show_default=True,
    help="triton: guaranteed_no_evict or max_utilization.",
)
@click.option(
    "--instance-count",
    type=int,
    default=1,
    show_default=True,
    help="triton: instances of preprocessing and postprocessing.",
)
@click.option(
    "--triton-templates",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="triton: local all_models/inflight_batcher_llm of the backend release; default: the base's.",
)
@click.option(
    "--triton-param",
    multiple=True,
    metavar="NAME=VALUE",
    help="triton: extra ${NAME} value for the backend templates (repeatable).",
)
@click.option("--no-pull", is_flag=True, help="Do not pull a missing base image.")
@click.option(
    "--no-base-check",
    is_flag=True,
    help="Skip the base image TensorRT-LLM version check (context-only hosts without Docker).",
)
@click.option(
    "--health-start-period",
    default="600s",
    show_default=True,
    help="HEALTHCHECK --start-period (engine load time).",
)
def command(
    ref: str | None,
    template: str,
    tag: str | None,
    base: str | None,
    push: bool,
    context_only: Path | None,
    as_json: bool,
    from_dir: Path | None,
    metadata_file: Path | None,
    tokenizer: Path | None,
    max_batch_size: int | None,
    max_beam_width: int | None,
    kv_fraction: float,
    port: int,
    decoupled: bool,
    batching_strategy: str,
    batch_scheduler_policy: str,
    instance_count: int,
    triton_templates: Path | None,
    triton_param: tuple[str, ...],
    no_pull: bool,
    no_base_check: bool,
    health_start_period: str,
) -> None:
    """Bake the engine REF (hash or name:tag) into a serving image labelled with its artifact hash.

    A serve config REF (backend = "pytorch") is baked with the checkpoint it points at and the AutoTuner
    caches captured for it: `trtllm-serve CHECKPOINT --config config.yaml`, or Triton's LLM-API backend.
    """
    from rich.console import Console

    from trtbuild.bake import BakeRequest, ServeOptions, TritonOptions, bake, prepare
    from trtbuild.bake.render import HealthCheck

    if (ref is None) == (from_dir is None):
        raise InputError(
            "give exactly one of REF or --from-dir DIR", hint="e.g. trtbuild bake llama-8b:fp8 ..."
        )
    if metadata_file and not from_dir:
        raise InputError("--metadata goes with --from-dir", hint="REF brings its metadata from the registry")
    if context_only is None and not tag:
        raise InputError(
            "--tag is required to build an image", hint="pass --tag IMAGE:TAG, or --context-only DIR"
        )
    if push and context_only is not None:
        raise InputError("--push builds an image; --context-only does not", hint="drop one of them")
    if not re_duration(health_start_period):
        raise InputError(
            f"--health-start-period {health_start_period!r}: expected a duration like 600s or 10m",
            hint="use a number with s, m or h",
        )

    console = Console(stderr=True, highlight=False, soft_wrap=True)

    def progress(line: str) -> None:
        console.print(line, markup=False)

    opts: dict[str, Any] = dict(  # BakeRequest's or PytorchBakeRequest's options
        template=template,
        tag=tag,
        base_image=base,
        tokenizer_dir=tokenizer,
        serve=ServeOptions(
            max_batch_size=max_batch_size,
            max_beam_width=max_beam_width,
            kv_cache_free_gpu_memory_fraction=kv_fraction,
            port=port,
        ),
        triton=TritonOptions(
            triton_max_batch_size=max_batch_size,
            max_beam_width=max_beam_width,
            decoupled=decoupled,
            batching_strategy=batching_strategy,
            kv_cache_free_gpu_mem_fraction=kv_fraction,
            batch_scheduler_policy=batch_scheduler_policy,
            instance_count=instance_count,
            extra=_parse_params(triton_param),
        ),
        triton_templates=triton_templates,
        health=HealthCheck(start_period=health_start_period),
        pull_base=not no_pull,
        check_base=not no_base_check,
    )

    created_context = False
    if context_only is not None:
        if context_only.exists() and any(context_only.iterdir()):
            raise InputError(f"{context_only}: exists and is not empty", hint="pass a new or empty directory")
        created_context = not context_only.exists()
        context_only.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="trtbuild-bake-") as tmp:
        context = context_only or Path(tmp) / "context"
        try:
            if ref is not None and from_dir is None and _kind_of(ref) == "serve-config":
                from trtbuild.bake.pytorch import bake_pytorch, prepare_pytorch

                preq = _pytorch_request(ref, Path(tmp) / "pulled", opts, port, decoupled, progress)
                if context_only is not None:
                    result = prepare_pytorch(preq, context, progress=progress)
                else:
                    result = bake_pytorch(preq, context_dir=context, push=push, progress=progress)
            else:
                if from_dir is not None:
                    engine_dir = from_dir
                    record = _local_artifact(metadata_file)
                else:
                    assert ref is not None  # exactly one of REF / --from-dir: checked above
                    context.mkdir(parents=True, exist_ok=True)
                    engine_dir = context / "engine"
                    progress(f"pulling {ref}")
                    record = _pull(ref, engine_dir)
                req = BakeRequest(
                    engine_dir=engine_dir,
                    metadata=record.metadata,
                    artifact_hash=record.hash,
                    artifact_name=record.name or ref,
                    created_at=record.created_at,
                    **opts,
                )
                if context_only is not None:
                    result = prepare(req, context, progress=progress)
                else:
                    result = bake(req, context_dir=context, push=push, progress=progress)
        except BaseException:
            if context_only is not None and created_context:
                shutil.rmtree(context_only, ignore_errors=True)
            elif context_only is not None:
                for child in context_only.iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            raise
    out = result.as_dict()
    if context_only is None:
        out["context_dir"] = None
    if as_json:
        print_json(out)
    elif context_only is not None:
        click.echo(str(result.context_dir))
    else:
        click.echo(result.image_id)


def re_duration(value: str) -> bool:
    import re

    return re.fullmatch(r"[0-9]+(ms|s|m|h)", value) is not None

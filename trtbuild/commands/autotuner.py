"""``trtbuild autotuner capture|pull``: warm-start AutoTuner caches keyed by (GPU, SM, TensorRT-LLM version,
tp, model, quantization) and handed only to a matching host."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from trtbuild.commands._registry import emit_json, json_option, open_registry, registry_options


def _host(
    gpu_name: str | None, gpu_arch: str | None, trtllm: str | None
) -> tuple[str | None, str | None, str | None]:
    """Explicit values win; the rest from nvidia-smi (first GPU) and the installed tensorrt_llm."""
    if gpu_name is None or gpu_arch is None:
        from trtbuild.host.fingerprint import host_gpus

        gpus = host_gpus()
        first = gpus.gpus[0] if gpus.gpus else None
        gpu_name = gpu_name or (first.name if first else None)
        gpu_arch = gpu_arch or (first.arch if first else None)
    if trtllm is None:
        from importlib import metadata

        try:
            trtllm = metadata.version("tensorrt_llm")
        except metadata.PackageNotFoundError:
            trtllm = None
    return gpu_name, gpu_arch, trtllm


def _host_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--trtllm", help="TensorRT-LLM version [default: installed tensorrt_llm].")(fn)
    fn = click.option("--gpu-arch", help="SM arch, e.g. sm90 [default: nvidia-smi].")(fn)
    return click.option("--gpu-name", help='GPU name, e.g. "NVIDIA H100 80GB HBM3" [default: nvidia-smi].')(
        fn
    )


@click.group("autotuner")
def command() -> None:
    """Warm-start AutoTuner caches of PyTorch-backend serve configs."""


@command.command("capture")
@click.argument("serve_ref")
@click.argument("cache_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--cache-file",
    default="autotuner_cache.json",
    show_default=True,
    help="The file name TLLM_AUTOTUNER_CACHE_PATH named inside CACHE_DIR.",
)
@_host_options
@registry_options
@json_option
def capture_command(
    serve_ref: str,
    cache_dir: Path,
    cache_file: str,
    gpu_name: str | None,
    gpu_arch: str | None,
    trtllm: str | None,
    db_url: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Publish the AutoTuner cache in CACHE_DIR, captured on this GPU, for the serve config SERVE_REF."""
    from trtbuild.build.autotuner import capture
    from trtbuild.errors import InputError

    name, arch, version = _host(gpu_name, gpu_arch, trtllm)
    if not (name and arch and version):
        raise InputError(
            "the GPU name, SM arch or TensorRT-LLM version of this host is unknown",
            hint="run on the GPU host in the serving image, or pass --gpu-name --gpu-arch --trtllm",
        )
    art = capture(
        open_registry(db_url, store_url),
        serve_ref,
        cache_dir,
        gpu_name=name,
        gpu_arch=arch,
        trtllm_version=version,
        cache_file=cache_file,
    )
    if as_json:
        emit_json({"hash": art.hash, "name": art.name, "metadata": art.metadata.to_dict()})
    else:
        click.echo(f"{art.hash}  {art.name}  {name} {arch} TensorRT-LLM {version}")


@command.command("pull")
@click.argument("serve_ref")
@click.argument("dest", type=click.Path(path_type=Path))
@_host_options
@registry_options
@json_option
def pull_command(
    serve_ref: str,
    dest: Path,
    gpu_name: str | None,
    gpu_arch: str | None,
    trtllm: str | None,
    db_url: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Pull the cache of SERVE_REF captured on this kind of host into DEST (exit 1, with reasons, if none)."""
    from registry.api import NotFound
    from trtbuild.build.autotuner import cache_for_host

    reg = open_registry(db_url, store_url)
    name, arch, version = _host(gpu_name, gpu_arch, trtllm)
    hit, reasons = cache_for_host(reg, serve_ref, gpu_name=name, gpu_arch=arch, trtllm_version=version)
    if hit is None:
        lines = "".join(f"\n  {r}" for r in reasons) or "\n  (no cache captured for this serve config)"
        raise NotFound(
            f"no AutoTuner cache of {serve_ref} fits this host ({name}, {arch}, {version}):{lines}"
        )
    reg.pull(hit.hash, dest)
    cache_file = hit.metadata.cache_file
    if as_json:
        emit_json({"hash": hit.hash, "dest": str(dest), "TLLM_AUTOTUNER_CACHE_PATH": str(dest / cache_file)})
    else:
        click.echo(f"export TLLM_AUTOTUNER_CACHE_PATH={dest / cache_file}")

"""trtbuild resolve NAME: the best engine of NAME for a host, and why every other one does not fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from trtbuild.commands._registry import emit_json, json_option, open_registry, registry_options


def host_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--gpu-arch --driver --gpus --gpu-mem-gib --trtllm --serving-image (defaults: nvidia-smi and the
    installed tensorrt_llm; an unknown TensorRT-LLM version is refused, never guessed)."""
    options: list[tuple[str, dict[str, Any]]] = [
        ("--gpu-arch", {"default": None, "help": "SM arch, e.g. sm90 [default: nvidia-smi]."}),
        ("--driver", {"default": None, "help": "Driver version, e.g. 570.124.06 [default: nvidia-smi]."}),
        (
            "--gpus",
            {"type": click.IntRange(min=1), "default": None, "help": "GPU count [default: nvidia-smi]."},
        ),
        (
            "--gpu-mem-gib",
            {
                "type": click.FloatRange(min=0),
                "default": None,
                "help": "Memory per GPU in GiB [default: nvidia-smi].",
            },
        ),
        (
            "--trtllm",
            {
                "default": None,
                "metavar": "VERSION",
                "help": "TensorRT-LLM version of the serving runtime, e.g. 1.0.0 (required unless "
                "--serving-image or an installed tensorrt_llm tells it).",
            },
        ),
        (
            "--serving-image",
            {
                "default": None,
                "metavar": "IMAGE",
                "help": "Read the runtime's TensorRT-LLM version from this image (its "
                "ai.trtbuild.trtllm_version label, else a probe container; needs a Docker Engine).",
            },
        ),
    ]
    for decl, kw in reversed(options):
        fn = click.option(decl, **kw)(fn)
    return fn


KINDS = ("engine", "serve-config", "hf-checkpoint")


def kind_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--kind",
        type=click.Choice(KINDS),
        default="engine",
        show_default=True,
        help="engine, or serve-config (PyTorch backend: the config and the checkpoint it points at).",
    )(fn)


def resolve_or_fail(reg: Any, name: str, host: Any, kind: str = "engine") -> Any:
    """The best artifact, or NotFound listing each candidate with the constraint it failed."""
    from registry.api import NotFound

    res = reg.resolve(name, host, kind=kind)
    if res.best is None:
        lines = "\n".join(f"  {a.hash[:19]}: {reason}" for a, reason in res.rejected)
        raise NotFound(f"no {kind} named {name!r} fits this host:\n{lines}")
    return res.best


@click.command("resolve")
@click.argument("name")
@host_options
@kind_option
@registry_options
@json_option
def command(
    name: str,
    gpu_arch: str | None,
    driver: str | None,
    gpus: int | None,
    gpu_mem_gib: float | None,
    trtllm: str | None,
    serving_image: str | None,
    kind: str,
    db_url: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Pick the best engine (or serve config) of NAME for this host (or the host the flags describe)."""
    from trtbuild.host.serving import serving_host

    reg = open_registry(db_url, store_url)
    host = serving_host(gpu_arch, driver, gpus, gpu_mem_gib, trtllm, serving_image)
    res = reg.resolve(name, host, kind=kind)
    if as_json:
        emit_json({"host": host.__dict__, **res.to_dict()})
    else:
        if res.best is not None:
            click.echo(res.best.hash)
            for note in res.notes:
                click.echo(f"  note: {note}", err=True)
        for art, reason in res.rejected:
            click.echo(f"  rejected {art.hash[:19]}: {reason}", err=True)
    if res.best is None:
        raise SystemExit(1)

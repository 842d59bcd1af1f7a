"""trtbuild resolve NAME: the best engine of NAME for a host, and why every other one does not fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from trtbuild.commands._registry import emit_json, json_option, open_registry, registry_options


def host_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--gpu-arch --driver --gpus --gpu-mem-gib --trtllm (defaults: nvidia-smi and the installed tensorrt_llm)."""
    for decl, kw in reversed(
        [
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
                {"default": None, "help": "TensorRT-LLM runtime version [default: installed tensorrt_llm]."},
            ),
        ]
    ):
        fn = click.option(decl, **kw)(fn)
    return fn


def resolve_or_fail(
    reg: Any,
    name: str,
    gpu_arch: str | None,
    driver: str | None,
    gpus: int | None,
    gpu_mem_gib: float | None,
    trtllm: str | None,
) -> Any:
    """The best artifact, or NotFound listing each candidate with the constraint it failed."""
    from registry.api import NotFound, detect_host

    res = reg.resolve(name, detect_host(gpu_arch, driver, gpus, gpu_mem_gib, trtllm))
    if res.best is None:
        lines = "\n".join(f"  {a.hash[:19]}: {reason}" for a, reason in res.rejected)
        raise NotFound(f"no engine named {name!r} fits this host:\n{lines}")
    return res.best


@click.command("resolve")
@click.argument("name")
@host_options
@registry_options
@json_option
def command(
    name: str,
    gpu_arch: str | None,
    driver: str | None,
    gpus: int | None,
    gpu_mem_gib: float | None,
    trtllm: str | None,
    db_url: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Pick the best engine of NAME for this host (or the host the flags describe)."""
    from registry.api import detect_host

    reg = open_registry(db_url, store_url)
    host = detect_host(gpu_arch, driver, gpus, gpu_mem_gib, trtllm)
    res = reg.resolve(name, host)
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

"""trtbuild pull REF DEST [--resolve ...]: verified, atomic download of an artifact."""

from __future__ import annotations

from pathlib import Path

import click

from trtbuild.commands._common import json_option, print_json
from trtbuild.commands._registry import open_registry, registry_options
from trtbuild.commands.resolve import host_options, kind_option, resolve_or_fail
from trtbuild.errors import InputError


@click.command("pull")
@click.argument("ref")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option(
    "--resolve",
    "use_resolve",
    is_flag=True,
    help="REF is a NAME: pull the best engine of that name for this host (see `trtbuild resolve`).",
)
@host_options
@kind_option
@click.option(
    "--checkpoint-dest",
    type=click.Path(path_type=Path),
    help="For a serve config: also pull the checkpoint it points at into this directory.",
)
@registry_options
@json_option
def command(
    ref: str,
    dest: Path,
    use_resolve: bool,
    gpu_arch: str | None,
    driver: str | None,
    gpus: int | None,
    gpu_mem_gib: float | None,
    trtllm: str | None,
    serving_image: str | None,
    kind: str,
    checkpoint_dest: Path | None,
    db_url: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Pull REF (sha256:<hex>, NAME:TAG or NAME@sha256:<hex>) into DEST, verifying every byte.

    Files land in a temp dir beside DEST and are renamed into place; DEST gets a marker file
    .trtbuild-artifact.json, and pulling the same hash again is a no-op.
    """
    reg = open_registry(db_url, store_url)
    if use_resolve:
        from trtbuild.host.serving import serving_host

        host = serving_host(gpu_arch, driver, gpus, gpu_mem_gib, trtllm, serving_image)
        ref = resolve_or_fail(reg, ref, host, kind).hash
    art = reg.pull(ref, dest, progress=not as_json)
    checkpoint = getattr(art.metadata, "checkpoint", None)  # a serve config points at its checkpoint
    if checkpoint_dest is not None:
        if checkpoint is None:
            raise InputError(f"{art.hash} is a {art.kind}, not a serve config", hint="drop --checkpoint-dest")
        reg.pull(checkpoint, checkpoint_dest, progress=not as_json)
    if as_json:
        print_json(
            {
                "hash": art.hash,
                "name": art.name,
                "kind": art.kind,
                "dest": str(dest.absolute()),
                "size": art.size,
                "checkpoint": checkpoint,
                "checkpoint_dest": str(checkpoint_dest.absolute()) if checkpoint_dest else None,
            }
        )
    else:
        click.echo(f"{art.hash} -> {dest}")
        if checkpoint is not None:
            click.echo(
                f"{checkpoint} -> {checkpoint_dest}"
                if checkpoint_dest
                else f"  serves checkpoint {checkpoint} (pull it too with --checkpoint-dest DIR)"
            )

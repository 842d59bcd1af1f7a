"""trtbuild ls [--name NAME]: list artifacts in the catalog, newest first."""

from __future__ import annotations

import click

from trtbuild.commands._common import human_size, json_option, print_json, short, table
from trtbuild.commands._registry import ARTIFACT_KINDS, open_registry, registry_options


@click.command("ls")
@click.option("--name", default=None, help="Only artifacts pushed under this name.")
@click.option("--kind", type=click.Choice(ARTIFACT_KINDS), default=None)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many rows.")
@click.option(
    "--no-trunc",
    is_flag=True,
    help="Full sha256 hashes (the default when stdout is not a terminal); a short hash is the first 12 "
    "hex digits, which every command takes as a reference.",
)
@registry_options
@json_option
def command(
    name: str | None,
    kind: str | None,
    limit: int | None,
    no_trunc: bool,
    db_url: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """List artifacts (hash, name, kind, tags, size, arch, TensorRT-LLM, created), newest first."""
    import sys

    reg = open_registry(db_url, store_url)
    arts = reg.list(name=name, kind=kind, limit=limit)
    for hash_, why in reg.bad_rows:  # reported, never fatal
        click.echo(f"warning: skipped an unreadable catalog row {hash_}: {why}", err=True)
    if as_json:
        print_json([a.to_dict() | {"files": len(a.files)} for a in arts])
        return
    full = no_trunc or not sys.stdout.isatty()
    rows = []
    for a in arts:
        meta = a.metadata
        tp, pp = getattr(meta, "tp", None), getattr(meta, "pp", None)
        rows.append(
            [
                a.hash if full else short(a.hash),
                a.name,
                a.kind,
                ",".join(a.tags),
                human_size(a.size).replace(" ", ""),  # one word per cell: columns split on blanks
                getattr(meta, "gpu_arch", None),
                getattr(meta, "trtllm_version", None),
                f"{tp or 1}x{pp or 1}" if tp or pp else None,
                a.created_at.strftime("%Y-%m-%dT%H:%MZ"),
            ]
        )
    table(["HASH", "NAME", "KIND", "TAGS", "SIZE", "ARCH", "TRTLLM", "TPxPP", "CREATED"], rows)

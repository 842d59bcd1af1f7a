"""trtbuild ls [--name NAME]: list artifacts in the catalog, newest first."""

from __future__ import annotations

import click

from trtbuild.commands._registry import (
    emit_json,
    human_size,
    json_option,
    open_registry,
    registry_options,
    table,
)


@click.command("ls")
@click.option("--name", default=None, help="Only artifacts pushed under this name.")
@click.option("--kind", type=click.Choice(["engine", "checkpoint", "timing-cache"]), default=None)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many rows.")
@registry_options
@json_option
def command(
    name: str | None,
    kind: str | None,
    limit: int | None,
    db_url: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """List artifacts (hash, name, kind, tags, size, arch, TensorRT-LLM, created)."""
    reg = open_registry(db_url, store_url)
    arts = reg.list(name=name, kind=kind, limit=limit)
    for hash_, why in reg.bad_rows:  # reported, never fatal
        click.echo(f"warning: skipped an unreadable catalog row {hash_}: {why}", err=True)
    if as_json:
        emit_json([a.to_dict() | {"files": len(a.files)} for a in arts])
        return
    table(
        ["HASH", "NAME", "KIND", "TAGS", "SIZE", "ARCH", "TRTLLM", "TPxPP", "CREATED"],
        [
            [
                a.hash[:19],
                a.name,
                a.kind,
                ",".join(t.split(":", 1)[1] for t in a.tags),
                human_size(a.size),
                a.columns.get("gpu_arch"),
                a.columns.get("trtllm_version"),
                f"{a.columns.get('tp') or 1}x{a.columns.get('pp') or 1}",
                a.created_at.strftime("%Y-%m-%d %H:%M"),
            ]
            for a in arts
        ],
    )

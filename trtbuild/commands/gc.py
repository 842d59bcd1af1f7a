"""trtbuild gc [--keep-last N] [--dry-run]: remove old artifacts and unreferenced blobs."""

from __future__ import annotations

import click

from trtbuild.commands._registry import emit_json, human_size, json_option, open_registry, registry_options


@click.command("gc")
@click.option(
    "--keep-last",
    type=click.IntRange(min=0),
    default=None,
    help="Keep the N newest artifacts of each name; older untagged, unleased ones are deleted. "
    "Without it no artifact is deleted, only unreferenced blobs and manifests.",
)
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@click.option(
    "--grace",
    "grace_s",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="Only sweep store objects older than this many seconds (protects pushes in flight).",
)
@registry_options
@json_option
def command(
    keep_last: int | None,
    dry_run: bool,
    grace_s: float,
    db_url: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Garbage-collect the registry. Tagged or leased artifacts are never removed."""
    rep = open_registry(db_url, store_url).gc(keep_last=keep_last, dry_run=dry_run, grace_s=grace_s)
    for problem in rep.problems:  # unreadable catalog rows: reported, never fatal
        click.echo(f"warning: {problem}", err=True)
    if as_json:
        emit_json(rep.to_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    for h in rep.deleted_artifacts:
        click.echo(f"{verb} artifact {h}")
    click.echo(
        f"{verb} {len(rep.deleted_artifacts)} artifacts, {rep.deleted_manifests} manifests, "
        f"{rep.deleted_blobs} blobs ({human_size(rep.freed_bytes)})"
    )

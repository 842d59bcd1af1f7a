"""trtbuild gc [--keep-last N] [--grace S] [--dry-run]: remove old artifacts, unreferenced blobs and old
step outputs of the work directory."""

from __future__ import annotations

import click

from trtbuild.commands._common import human_size, json_option, print_json
from trtbuild.commands._registry import open_registry, registry_options


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.0f} s"


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
    help="Only sweep store objects older than this many seconds (protects pushes in flight); younger "
    "unreferenced ones are reported and left for a later gc.",
)
@click.option(
    "--work-max-age",
    "work_max_age_days",
    type=click.FloatRange(min=0),
    default=7.0,
    show_default=True,
    metavar="DAYS",
    help="Remove step outputs of $TRTBUILD_HOME/work (models, checkpoints, engines, logs) unused this long.",
)
@click.option(
    "--work-max-size",
    "work_max_gib",
    type=click.FloatRange(min=0),
    default=None,
    metavar="GIB",
    help="Then remove the least recently used step outputs until the work directory holds at most this.",
)
@registry_options
@json_option
def command(
    keep_last: int | None,
    dry_run: bool,
    grace_s: float,
    work_max_age_days: float,
    work_max_gib: float | None,
    db_url: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Garbage-collect the registry and the work directory. Tagged or leased artifacts are never removed,
    nor the work directory while a build on this host runs."""
    from trtbuild.build import workdir
    from trtbuild.settings import work_root

    rep = open_registry(db_url, store_url).gc(keep_last=keep_last, dry_run=dry_run, grace_s=grace_s)
    for problem in rep.problems:  # unreadable catalog rows: reported, never fatal
        click.echo(f"warning: {problem}", err=True)
    work = workdir.clean(
        work_root(),
        max_age_s=work_max_age_days * workdir.DAY_S,
        max_bytes=None if work_max_gib is None else int(work_max_gib * (1 << 30)),
        dry_run=dry_run,
    )
    if as_json:
        print_json({**rep.to_dict(), "work": work.to_dict()})
        return
    verb = "would delete" if dry_run else "deleted"
    for h in rep.deleted_artifacts:
        click.echo(f"{verb} artifact {h}")
    click.echo(
        f"{verb} now: {len(rep.deleted_artifacts)} artifacts, {rep.deleted_manifests} manifests, "
        f"{rep.deleted_blobs} blobs ({human_size(rep.freed_bytes)})"
    )
    if rep.pending_manifests or rep.pending_blobs:
        click.echo(
            f"after the grace period ({_duration(rep.grace_s)}): {rep.pending_manifests} manifests, "
            f"{rep.pending_blobs} blobs ({human_size(rep.pending_bytes)}) are unreferenced but younger; "
            "a later gc deletes them (or --grace 0 when no push is running)"
        )
    for entry in work.removed:
        click.echo(f"{verb} {entry.path} ({human_size(entry.size)})")
    if work.skipped:
        click.echo(f"work directory {work.root} not cleaned: {work.skipped}")
    else:
        click.echo(
            f"work directory {work.root}: {verb} {len(work.removed)} step outputs "
            f"({human_size(work.freed_bytes)}), {human_size(work.kept_bytes)} kept"
        )

"""trtbuild rm REF...: remove artifacts from the catalog; gc frees their bytes after the grace period."""

from __future__ import annotations

import click

from trtbuild.commands._common import human_size, json_option, print_json
from trtbuild.commands._registry import open_registry, registry_options


@click.command("rm")
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@click.option(
    "--force", "-f", is_flag=True, help="Also remove tagged artifacts (their tags go first) and leased ones."
)
@registry_options
@json_option
def command(
    refs: tuple[str, ...], force: bool, db_url: str | None, store_url: str | None, as_json: bool
) -> None:
    """Remove REF (a hash or unique prefix, NAME:TAG, NAME@sha256:...) from the catalog.

    A tagged artifact, or one whose build key is leased by a running build, is refused unless --force.
    The blobs stay in the store until `trtbuild gc` sweeps them once older than its grace period, so a pull
    that already started finishes.
    """
    reg = open_registry(db_url, store_url)
    removals = [reg.remove(ref, force=force) for ref in refs]
    if as_json:
        print_json([r.to_dict() for r in removals])
        return
    for r in removals:
        untagged = f", untagged {', '.join(r.untagged)}" if r.untagged else ""
        click.echo(f"removed {r.artifact.hash} ({r.artifact.name}{untagged})")
    freed = sum(r.unreferenced_bytes for r in removals)
    click.echo(
        f"{human_size(freed)} of blobs no longer referenced: `trtbuild gc` deletes them once they are older "
        "than its grace period",
        err=True,
    )

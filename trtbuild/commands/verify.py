"""trtbuild verify [REF] [--repair DIR]: does the store hold every manifest and blob the catalog names?"""

from __future__ import annotations

from pathlib import Path

import click

from trtbuild.commands._common import json_option, print_json
from trtbuild.commands._registry import open_registry, registry_options


@click.command("verify")
@click.argument("ref", required=False)
@click.option(
    "--repair",
    "repair_from",
    type=click.Path(path_type=Path),
    default=None,
    metavar="DIR",
    help="Restore what is missing: manifests from the catalog, blobs from the files of DIR (a local copy of "
    "the artifact: the directory that was pushed, or a pulled one) whose sha256 matches.",
)
@registry_options
@json_option
def command(
    ref: str | None, repair_from: Path | None, db_url: str | None, store_url: str | None, as_json: bool
) -> int:
    """Check REF (default: every artifact): each manifest and blob by presence and size. Exit 1 when
    something is still missing or a catalog row cannot be read; each such row is reported and the check
    goes on."""
    reg = open_registry(db_url, store_url)

    def show(check) -> None:  # noqa: ANN001 - registry.api.ArtifactCheck
        if check.error:
            click.echo(f"✗ {check.hash}: {check.error}")
            return
        for what in check.repaired:
            click.echo(f"repaired {check.hash} ({check.name}): {what}")
        for what in check.missing:
            click.echo(f"✗ {check.hash} ({check.name}): missing {what}")

    report = reg.verify(ref, repair_from=repair_from, on_result=None if as_json else show)
    if as_json:
        print_json(report.to_dict())
    else:
        summary = report.to_dict()
        click.echo(
            f"checked {summary['checked']} artifacts: {summary['bad']} with problems, "
            f"{summary['repaired']} repaired",
            err=True,
        )
        if not report.ok and repair_from is None:
            click.echo("fix: trtbuild verify REF --repair DIR (DIR: a local copy of the artifact)", err=True)
    return 0 if report.ok else 1

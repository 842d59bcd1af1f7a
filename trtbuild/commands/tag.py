"""trtbuild tag REF NAME:TAG: point a tag at an artifact (tag history is kept)."""

from __future__ import annotations

import click

from trtbuild.commands._common import json_option, print_json
from trtbuild.commands._registry import open_registry, registry_options


@click.command("tag")
@click.argument("ref")
@click.argument("name_tag", metavar="NAME:TAG")
@registry_options
@json_option
def command(ref: str, name_tag: str, db_url: str | None, store_url: str | None, as_json: bool) -> None:
    """Point NAME:TAG at REF."""
    art = open_registry(db_url, store_url).tag(ref, name_tag)
    if as_json:
        print_json({"hash": art.hash, "tag": name_tag})
    else:
        click.echo(f"{name_tag} -> {art.hash}")

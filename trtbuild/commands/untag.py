"""trtbuild untag NAME:TAG: remove a tag (the artifact stays; the tag history records the removal)."""

from __future__ import annotations

import click

from trtbuild.commands._common import json_option, print_json
from trtbuild.commands._registry import open_registry, registry_options


@click.command("untag")
@click.argument("name_tags", nargs=-1, required=True, metavar="NAME:TAG...")
@registry_options
@json_option
def command(name_tags: tuple[str, ...], db_url: str | None, store_url: str | None, as_json: bool) -> None:
    """Remove NAME:TAG (a bare NAME means NAME:latest). The artifact it pointed to is kept; `trtbuild rm`
    removes artifacts."""
    reg = open_registry(db_url, store_url)
    removed = [{"tag": name_tag, "hash": reg.untag(name_tag)} for name_tag in name_tags]
    if as_json:
        print_json(removed)
        return
    for item in removed:
        click.echo(f"untagged {item['tag']} (was {item['hash']})")

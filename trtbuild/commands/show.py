"""trtbuild show REF: one artifact's catalog record, metadata, provenance and files."""

from __future__ import annotations

import click

from trtbuild.commands._common import human_size, json_option, print_json
from trtbuild.commands._registry import open_registry, registry_options


@click.command("show")
@click.argument("ref")
@registry_options
@json_option
def command(ref: str, db_url: str | None, store_url: str | None, as_json: bool) -> None:
    """Show REF (sha256:<hex>, NAME:TAG or NAME@sha256:<hex>)."""
    art = open_registry(db_url, store_url).get(ref)
    if as_json:
        print_json(art.to_dict())
        return
    click.echo(f"hash:      {art.hash}")
    click.echo(f"name:      {', '.join(art.names)}")
    click.echo(f"kind:      {art.kind}")
    click.echo(f"tags:      {', '.join(art.tags) or '-'}")
    click.echo(f"size:      {human_size(art.size)} in {len(art.files)} files")
    click.echo(f"created:   {art.created_at.isoformat()}")
    click.echo(f"build key: {art.build_key or '-'}")
    for title, data in (("metadata", art.metadata.to_dict()), ("provenance", art.provenance.to_dict())):
        click.echo(f"{title}:")
        for k in sorted(data):
            click.echo(f"  {k}: {data[k]}")
    click.echo("files:")
    for f in art.files:
        click.echo(f"  {f.sha256[:12]}  {human_size(f.size):>10}  {f.path}")

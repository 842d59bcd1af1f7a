"""trtbuild push DIR --name NAME [--tag TAG] [--kind engine]: publish a directory to the registry."""

from __future__ import annotations

import json
from pathlib import Path

import click

from trtbuild.commands._common import human_size, json_option, print_json
from trtbuild.commands._registry import ARTIFACT_KINDS, open_registry, registry_options


def _json_object(value: str | None, flag: str) -> dict:
    if not value:
        return {}
    from registry.api import MAX_JSON_BYTES, InvalidInput

    if value.startswith("@"):
        try:
            if Path(value[1:]).stat().st_size > MAX_JSON_BYTES:
                raise InvalidInput(
                    f"{flag} {value}: larger than {MAX_JSON_BYTES} bytes",
                    hint=f"{flag} takes a small JSON object",
                )
            text = Path(value[1:]).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"{flag} {value}: cannot read {value[1:]}: {getattr(exc, 'strerror', None) or exc}",
                hint=f"give the path of a JSON file after @, or the JSON itself: {flag} '{{...}}'",
            ) from None
    else:
        text = value
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(
            f"{flag}: not valid JSON: {str(exc)[:200]}",
            hint=f'pass {flag} \'{{"key": "value"}}\' or {flag} @file.json',
        ) from None
    if not isinstance(obj, dict):
        raise InvalidInput(f"{flag}: expected a JSON object, got {type(obj).__name__}")
    return obj


@click.command("push")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Artifact name, e.g. llama-3.1-8b-fp8-h100.")
@click.option("--tag", default=None, help="Also point NAME:TAG at the pushed artifact.")
@click.option("--kind", type=click.Choice(ARTIFACT_KINDS), default="engine", show_default=True)
@click.option(
    "--metadata",
    default=None,
    metavar="JSON|@FILE",
    help="Identity fields of the kind (registry/metadata.py), stored in the manifest.",
)
@click.option(
    "--provenance",
    default=None,
    metavar="JSON|@FILE",
    help="Build facts (host, gpu_name, driver_version, build_seconds, ...), stored in the catalog only.",
)
@click.option("--build-key", default=None, help="Content key of the build that produced it.")
@registry_options
@json_option
def command(
    src: Path,
    name: str,
    tag: str | None,
    kind: str,
    metadata: str | None,
    provenance: str | None,
    build_key: str | None,
    db_url: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Push SRC (a directory) to the registry; prints the artifact hash."""
    from registry.api import BuildFacts, InvalidInput, parse_metadata

    fields = _json_object(metadata, "--metadata")
    if build_key is not None:
        if fields.get("build_key", build_key) != build_key:
            raise InvalidInput("--build-key and the build_key in --metadata differ", hint="give it once")
        fields["build_key"] = build_key
    identity = parse_metadata(kind, fields)
    facts = BuildFacts.from_dict(_json_object(provenance, "--provenance"))
    reg = open_registry(db_url, store_url)
    art = reg.push(src, name=name, metadata=identity, provenance=facts, tag=tag, progress=not as_json)
    res = art.pushed
    assert res is not None  # Registry.push always reports what it did
    if as_json:
        print_json(
            {
                "hash": art.hash,
                "name": name,
                "tag": tag,
                "size": art.size,
                "created": res.created,
                "uploaded_bytes": res.uploaded_bytes,
                "reused_bytes": res.reused_bytes,
            }
        )
        return
    click.echo(art.hash)
    click.echo(
        f"{'pushed' if res.created else 'already present'}: {name}{':' + tag if tag else ''} "
        f"({human_size(art.size)}, uploaded {human_size(res.uploaded_bytes)})",
        err=True,
    )

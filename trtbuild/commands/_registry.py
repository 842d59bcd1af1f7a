"""Shared pieces of the registry verbs: --db-url/--store-url/--json options, opening, output."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from registry.api import KIND_TYPES

F = Callable[..., Any]
ARTIFACT_KINDS = tuple(KIND_TYPES)  # the kinds of the registry's artifact contract


def registry_options(fn: F) -> F:
    """Add --db-url and --store-url (defaults: TRTBUILD_DB_URL / TRTBUILD_STORE_URL, then the cache dir;
    see trtbuild.settings)."""
    fn = click.option(
        "--store-url",
        default=None,
        metavar="URL",
        help="Store: file:///dir or s3://bucket/prefix [env TRTBUILD_STORE_URL].",
    )(fn)
    fn = click.option(
        "--db-url",
        default=None,
        metavar="URL",
        help="Catalog: sqlite:///file or postgresql+psycopg://... [env TRTBUILD_DB_URL].",
    )(fn)
    return fn


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout (no progress bars).")(
        fn
    )


def open_registry(db_url: str | None, store_url: str | None) -> Any:
    from trtbuild import settings

    return settings.open_registry(db_url, store_url)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def table(columns: list[str], rows: list[list[Any]]) -> None:
    """Columns padded to their widest cell, never truncated or wrapped (stable for ``awk``/``cut`` when
    piped); an unknown value prints as ``-`` so every row has every column."""
    cells = [columns] + [["-" if v is None or v == "" else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())

"""Helpers shared by the CLI verbs: options and output (JSON, tables, sizes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

toolchains_option = click.option(
    "--toolchains",
    "toolchains_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Toolchain pins file [env TRTBUILD_TOOLCHAINS; default: recipes/toolchains.toml].",
)
recipes_argument = click.argument("recipes", nargs=-1, required=True, type=click.Path(path_type=Path))
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON on stdout instead of tables and progress."
)


def print_json(obj: object) -> None:
    """The one JSON output of every command: indented, keys sorted (stable for diffs and scripts)."""
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def short(key: str, n: int = 12) -> str:
    """``sha256:abcdef…`` shortened for tables."""
    return key.split(":", 1)[-1][:n]


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

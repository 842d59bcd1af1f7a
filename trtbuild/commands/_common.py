"""Helpers shared by the CLI verbs: options and output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

toolchains_option = click.option(
    "--toolchains",
    "toolchains_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Toolchain pins file [env TRTBUILD_TOOLCHAINS; default: recipes/toolchains.toml].",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def short(key: str, n: int = 12) -> str:
    """``sha256:abcdef…`` shortened for tables."""
    return key.split(":", 1)[-1][:n]

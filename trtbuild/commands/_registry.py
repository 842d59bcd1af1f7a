"""Shared pieces of the registry verbs: the --db-url/--store-url options and opening the registry."""

from __future__ import annotations

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


def open_registry(db_url: str | None, store_url: str | None) -> Any:
    from trtbuild import settings

    return settings.open_registry(db_url, store_url)

"""``trtbuild lock RECIPE``: resolve image tags and model revisions, write RECIPE's .lock beside it."""

from __future__ import annotations

from pathlib import Path

import click

from trtbuild.commands._common import console, json_option, print_json, recipes_argument, toolchains_option


@click.command("lock")
@recipes_argument
@toolchains_option
@json_option
def command(recipes: tuple[Path, ...], toolchains_path: Path | None, as_json: bool) -> int:
    """Pin the toolchain image to its digest and the model revision to a commit, for each of RECIPES."""
    from dataclasses import asdict

    from trtbuild.recipe.load import load_recipe
    from trtbuild.recipe.lock import lock_recipe
    from trtbuild.recipe.toolchain import load_toolchains

    toolchains = load_toolchains(toolchains_path)
    written = []
    for path in recipes:
        lock, lock_path = lock_recipe(load_recipe(path, toolchains))
        written.append({"recipe": str(path), "lock": str(lock_path), **asdict(lock)})
        if not as_json:
            console().print(
                f"locked {path} -> {lock_path}\n  image {lock.image}@{lock.image_digest}"
                + (f"\n  revision {lock.revision}" if lock.revision else "")
            )
    if as_json:
        print_json(written)
    return 0

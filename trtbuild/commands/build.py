"""``trtbuild build RECIPE``: the main job."""

from __future__ import annotations

from pathlib import Path

import click

from trtbuild.commands._common import json_option, print_json, toolchains_option


@click.command("build")
@click.argument("recipe", type=click.Path(path_type=Path))
@toolchains_option
@click.option("--dry-run", is_flag=True, help="Validate and plan; start nothing.")
@click.option("--locked", is_flag=True, help="Refuse a missing or stale lock file.")
@click.option("--allow-unpinned", is_flag=True, help="Build even when the image or model revision floats.")
@json_option
def command(recipe: Path, toolchains_path: Path | None, dry_run: bool, locked: bool, allow_unpinned: bool,
            as_json: bool) -> int:
    """Build the TensorRT-LLM engine of RECIPE (or show what would run with --dry-run)."""
    from trtbuild.build import plan_recipe
    from trtbuild.commands.plan import show_plan

    plan = plan_recipe(recipe, toolchains_path=toolchains_path, locked=locked)
    if dry_run:
        print_json(plan.to_dict()) if as_json else show_plan(plan)
        return 0
    raise click.UsageError("only --dry-run is available until the builder lands")

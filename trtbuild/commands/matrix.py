"""``trtbuild matrix RECIPE...``: a CI build matrix (one entry per distinct engine key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from trtbuild.commands._common import (
    console,
    json_option,
    print_json,
    recipes_argument,
    short,
    toolchains_option,
)


@click.command("matrix")
@recipes_argument
@toolchains_option
@json_option
def command(recipes: tuple[Path, ...], toolchains_path: Path | None, as_json: bool) -> int:
    """Plan RECIPES and print {"include": [...]} for a CI matrix; recipes sharing an engine key appear once.
    Each entry says whether its engine is already in the registry ("built", "hash") and which steps would
    run, so a workflow can skip GPU runners: `if: ${{ !matrix.built }}`."""
    from trtbuild.build.plan import plan_recipe
    from trtbuild.build.registry_state import registry_state
    from trtbuild.recipe.load import is_pins_file
    from trtbuild.settings import open_existing_registry

    registry = open_existing_registry()  # a registry that cannot be asked fails the matrix: CI must know
    include: list[dict[str, Any]] = []  # one matrix entry per artifact key
    seen: set[str] = set()
    for path in recipes:
        if is_pins_file(path):
            continue
        plan = plan_recipe(path, toolchains_path=toolchains_path)
        if plan.artifact_key in seen:
            continue
        seen.add(plan.artifact_key)
        r = plan.recipe.recipe
        if plan.backend == "pytorch":
            from trtbuild.recipe.pytorch_checks import serve_world

            tp, pp = serve_world(r)
            gpus = tp * pp
        else:
            gpus = r.parallelism.world_size
        state = registry_state(plan, registry)
        include.append(
            {
                "recipe": str(path),
                "name": r.name,
                "backend": plan.backend,
                "engine_key": plan.artifact_key,  # what `build` publishes (the serve config for pytorch)
                "checkpoint_key": plan.checkpoint_key,
                "toolchain": r.target.toolchain,
                "gpu_arch": r.target.gpu_arch,
                "gpus": gpus,
                "built": state.built,
                "hash": state.hash,
                "would_run": state.would_run,
            }
        )
    if as_json:
        print_json({"include": include})
    else:
        for row in include:
            status = f"built {row['hash']}" if row["built"] else f"to build: {', '.join(row['would_run'])}"
            console().print(
                f"{row['recipe']}  {row['name']}  {short(row['engine_key'])}  {row['gpus']} GPU(s)  {status}"
            )
    return 0

"""``trtbuild plan RECIPE``: the ordered steps with their content keys, images, argv and mounts."""

from __future__ import annotations

from pathlib import Path

import click

from trtbuild.commands._common import console, json_option, print_json, short, toolchains_option


@click.command("plan")
@click.argument("recipe", type=click.Path(path_type=Path))
@toolchains_option
@click.option("--locked", is_flag=True, help="Refuse a missing or stale lock file.")
@json_option
def command(recipe: Path, toolchains_path: Path | None, locked: bool, as_json: bool) -> int:
    """Show the build plan of RECIPE."""
    from trtbuild.build.plan import plan_recipe
    from trtbuild.build.registry_state import registry_state_or_unknown

    plan = plan_recipe(recipe, toolchains_path=toolchains_path, locked=locked)
    state = registry_state_or_unknown(plan)
    if as_json:
        print_json(plan.to_dict() | {"registry": state.to_dict()})
    else:
        show_plan(plan, state)
    return 0


def show_plan(plan, state) -> None:
    """Print a plan as a table and what the registry says would run (shared by ``build --dry-run``)."""
    import shlex

    from rich.markup import escape
    from rich.table import Table

    out = console()
    out.print(
        f"[bold]{escape(plan.recipe.recipe.name)}[/]  toolchain {plan.recipe.toolchain.name}  "
        f"image {escape(plan.pins.image)}"
    )
    last = "engine key" if plan.backend == "engine" else "serve-config key"
    out.print(
        f"backend {plan.backend}   checkpoint key {short(plan.checkpoint_key)}   "
        f"{last} {short(plan.artifact_key)}"
    )
    table = Table(show_lines=False)
    for col in ("step", "key", "runs in", "command"):
        table.add_column(col)
    for step in plan.steps:
        where = "container" if step.image else "host"
        cmd = shlex.join(step.argv) if step.argv else "(in-process)"
        table.add_row(step.name, short(step.key), where, escape(cmd))
    out.print(table)
    if plan.backend == "engine":
        _show_engine_prediction(out, plan)
    color = "green" if state.built else "yellow" if state.built is None else "cyan"
    out.print(f"[{color}]{escape(state.describe())}[/]")
    for warning in plan.pins.floating:
        out.print(
            f"[yellow]unpinned:[/] {escape(warning)} (run trtbuild lock {escape(str(plan.recipe.path))})"
        )


def _show_engine_prediction(out, plan) -> None:
    """The limits and switches trtllm-build will save where they differ from the recipe's."""
    from rich.markup import escape

    prediction = plan.engine_prediction
    recipe = plan.recipe.recipe
    for c in prediction.changes:
        given = getattr(recipe.build, c.field, None)
        if given is None:
            given = getattr(recipe.limits, c.field, None)
        if given is not None:
            shown = f"recipe: {given}"
        else:
            shown = "unset" if c.requested is None else f"default: {c.requested}"
        out.print(f"[cyan]trtllm-build saves[/] {c.field} = {c.saved} ({shown}): {escape(c.reason)}")
    if prediction.limits.max_seq_len is None:
        out.print(
            "[cyan]trtllm-build deduces[/] max_seq_len (and the limits that follow from it) from the "
            "checkpoint's max_position_embeddings × rope factor; the model's config.json is not at hand"
        )

"""``trtbuild validate RECIPE...``: report every problem of every recipe; exit 2 if any is invalid."""

from __future__ import annotations

from pathlib import Path

import click

from trtbuild.commands._common import console, json_option, print_json, toolchains_option


@click.command("validate")
@click.argument("recipes", nargs=-1, required=True, type=click.Path(path_type=Path))
@toolchains_option
@json_option
def command(recipes: tuple[Path, ...], toolchains_path: Path | None, as_json: bool) -> int:
    """Validate RECIPES (TOML) against the schema, the model and the pinned toolchain."""
    from rich.markup import escape

    from trtbuild.errors import RecipeError
    from trtbuild.recipe.load import is_pins_file, load_recipe
    from trtbuild.recipe.toolchain import load_toolchains

    toolchains = load_toolchains(toolchains_path)
    results, failed = [], 0
    out = console()
    for path in recipes:
        if is_pins_file(path):
            count = len(load_toolchains(path))
            results.append({"recipe": str(path), "valid": True, "toolchain_pins": count})
            if not as_json:
                out.print(f"[green]✓[/] {escape(str(path))}  toolchain pins ({count} toolchains)")
            continue
        try:
            loaded = load_recipe(path, toolchains)
        except RecipeError as exc:
            failed += 1
            results.append(
                {"recipe": str(path), "valid": False, "problems": [i.as_dict() for i in exc.issues]}
            )
            if not as_json:
                out.print(f"[red]✗[/] {escape(str(path))}")
                out.print(escape(str(exc)))
            continue
        r = loaded.recipe
        results.append(
            {
                "recipe": str(path),
                "valid": True,
                "name": r.name,
                "toolchain": r.target.toolchain,
                "backend": loaded.backend,
            }
        )
        if not as_json:
            if loaded.backend == "pytorch":
                from trtbuild.recipe.pytorch_checks import serve_world

                tp, pp = serve_world(r)
                layout = f"pytorch  serve tp{tp}×pp{pp}"
            else:
                layout = f"tp{r.parallelism.tp}×pp{r.parallelism.pp}"
            out.print(
                f"[green]✓[/] {escape(str(path))}  {r.name}  {r.target.toolchain}  {r.target.gpu_arch}  "
                f"{r.quantization.format}/kv:{r.quantization.kv_cache}  {layout}"
            )
    if as_json:
        print_json(results)
    if failed:
        click.get_current_context().exit(2)
    return 0

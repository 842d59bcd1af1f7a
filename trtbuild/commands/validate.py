"""``trtbuild validate RECIPE...``: report every problem of every recipe; exit 2 if any is invalid."""

from __future__ import annotations

from pathlib import Path

import click

from trtbuild.commands._common import console, json_option, print_json, recipes_argument, toolchains_option


@click.command("validate")
@recipes_argument
@toolchains_option
@click.option(
    "--fetch-config",
    is_flag=True,
    help="Download the model's config files (config.json, no weights) at its pinned commit when the "
    "Hugging Face cache lacks them, so the model checks run.",
)
@json_option
def command(
    recipes: tuple[Path, ...], toolchains_path: Path | None, fetch_config: bool, as_json: bool
) -> int:
    """Validate RECIPES (TOML) against the schema, the model and the pinned toolchain.

    The checks that need the model's config.json run when it is at hand (a file:// checkpoint, the Hugging
    Face cache, or --fetch-config); otherwise validate says which checks did not run and why.
    """
    from rich.markup import escape

    from trtbuild.errors import RecipeError, TrtbuildError
    from trtbuild.recipe.load import is_pins_file, load_recipe
    from trtbuild.recipe.model_config import MODEL_CHECKS, fetch_model_config
    from trtbuild.recipe.toolchain import load_toolchains

    toolchains = load_toolchains(toolchains_path)
    results, failed, fetch_exit = [], 0, 0
    out = console()
    for path in recipes:
        if is_pins_file(path):
            count = len(load_toolchains(path))
            results.append({"recipe": str(path), "valid": True, "toolchain_pins": count})
            if not as_json:
                out.print(f"[green]✓[/] {escape(str(path))}  toolchain pins ({count} toolchains)")
            continue
        fetch_error = None
        if fetch_config:
            try:
                fetch_model_config(path)
            except TrtbuildError as exc:
                fetch_error = str(exc)
                fetch_exit = max(fetch_exit, exc.exit_code)
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
        not_run = []
        if loaded.facts is None:
            why = loaded.facts_missing or "the model's config.json is not available"
            not_run.append({"checks": MODEL_CHECKS, "why": f"{why} ({fetch_error})" if fetch_error else why})
        results.append(
            {
                "recipe": str(path),
                "valid": True,
                "name": r.name,
                "toolchain": r.target.toolchain,
                "backend": loaded.backend,
                "model_config": str(loaded.facts.source) if loaded.facts else None,
                "not_run": not_run,
            }
        )
        if not as_json:
            if loaded.backend == "pytorch":
                from trtbuild.recipe.pytorch_checks import serve_world

                tp, pp = serve_world(r)
                layout = f"pytorch  serve tp{tp}×pp{pp}"
            else:
                layout = f"tp{r.parallelism.tp}×pp{r.parallelism.pp}"
            mark = "[yellow]✓[/]" if not_run else "[green]✓[/]"
            out.print(
                f"{mark} {escape(str(path))}  {r.name}  {r.target.toolchain}  {r.target.gpu_arch}  "
                f"{r.quantization.format}/kv:{r.quantization.kv_cache}  {layout}"
            )
            for item in not_run:
                out.print(f"  [yellow]not checked:[/] {escape(item['checks'])}")
                out.print(f"    because {escape(item['why'])}")
    if as_json:
        print_json(results)
    if failed:
        click.get_current_context().exit(2)
    return fetch_exit  # a config that could not be fetched: 1 (network) or 2 (not pinned)

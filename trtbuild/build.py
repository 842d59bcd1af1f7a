"""The build pipeline's public entry points: plan a recipe, and build it."""

from __future__ import annotations

from pathlib import Path

from trtbuild.errors import LockError
from trtbuild.lock import lock_path_for, read_lock
from trtbuild.paths import cache_home, work_root
from trtbuild.plan import Plan, make_plan
from trtbuild.recipe import LoadedRecipe, load_recipe
from trtbuild.steps.fetch import local_tree_digest
from trtbuild.toolchain import load_toolchains


def plan_recipe(recipe_path: Path | str, *, toolchains_path: Path | None = None, locked: bool = False,
                workdir: Path | None = None) -> Plan:
    """Validate ``recipe_path`` and plan it (hashing a file:// checkpoint by content)."""
    loaded = load_recipe(recipe_path, load_toolchains(toolchains_path))
    lock = read_lock(loaded)
    plan = _plan(loaded, lock, workdir)
    if locked:
        if plan.pins.lock_state == "none":
            raise LockError(f"{lock_path_for(loaded.path)}: no lock file (--locked)",
                            hint=f"run: trtbuild lock {loaded.path}")
        if plan.pins.lock_state == "stale":
            raise LockError(f"{lock_path_for(loaded.path)}: stale: the recipe's toolchain or model changed since "
                            "it was locked (--locked)", hint=f"run: trtbuild lock {loaded.path}")
    return plan


def _plan(loaded: LoadedRecipe, lock, workdir: Path | None) -> Plan:
    model = loaded.recipe.model
    source_digest = None
    if model.scheme == "file":
        source_digest = local_tree_digest(Path(model.location), cache_home() / "hash-cache.json")
    return make_plan(loaded, workdir=workdir or work_root(), lock=lock, source_digest=source_digest)

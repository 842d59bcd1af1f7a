"""Recipes (paths or globs) -> the farm jobs to submit: one per distinct engine key, minus the keys the
registry already holds."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from trtbuild.errors import InputError
from trtbuild.farm.base import FarmJob

GLOB_CHARS = set("*?[")


@dataclass
class Selection:
    """Every distinct key of the recipes: ``jobs`` to build, ``built`` (key -> artifact hash) already in
    the registry, ``duplicates`` (recipe -> the recipe whose key it shares)."""

    jobs: list[FarmJob] = field(default_factory=list)
    built: dict[str, tuple[FarmJob, str]] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)

    @property
    def all_jobs(self) -> list[FarmJob]:
        return [*self.jobs, *(job for job, _ in self.built.values())]


def expand(patterns: list[str] | tuple[str, ...]) -> list[Path]:
    """Recipe paths from paths and globs (quoted globs from CI too), in order, without duplicates; the
    pins file and lock files matched by a glob are left out."""
    from trtbuild.recipe.load import is_pins_file

    out: list[Path] = []
    for pattern in patterns:
        if GLOB_CHARS & set(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
            matches = [p for p in matches if p.suffix == ".toml" and not is_pins_file(p)]
            if not matches:
                raise InputError(
                    f"{pattern}: no recipe matches", hint="check the glob (recipes end in .toml)"
                )
        else:
            matches = [Path(pattern)]
        for path in matches:
            path = path.resolve()
            if path not in out:
                out.append(path)
    if not out:
        raise InputError("no recipes given", hint="trtbuild farm submit recipes/*.toml")
    return out


def plan_jobs(
    paths: list[Path], *, toolchains_path: Path | None = None
) -> tuple[list[FarmJob], dict[str, str]]:
    """Plan each recipe as its job will (``--locked``: a missing or stale lock is refused now, not on a
    GPU node); recipes sharing an engine key give one job."""
    from trtbuild.build.plan import plan_recipe
    from trtbuild.recipe.checks import resolve_dataset

    jobs: dict[str, FarmJob] = {}
    duplicates: dict[str, str] = {}
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such recipe file")
        plan = plan_recipe(path, toolchains_path=toolchains_path, locked=True)
        if plan.pins.floating:
            raise InputError(
                f"{path}: a farm builds only pinned recipes: " + "; ".join(plan.pins.floating),
                hint=f"run `trtbuild lock {path}` and commit the lock",
            )
        recipe = plan.recipe.recipe
        cal = recipe.quantization.calibration
        key = plan.artifact_key  # what `build` publishes (the serve config for pytorch)
        if key in jobs:
            duplicates[str(path)] = str(jobs[key].recipe)
            continue
        jobs[key] = FarmJob(
            recipe=path,
            name=recipe.name,
            engine_key=key,
            gpus=recipe.parallelism.world_size,
            gpu_arch=recipe.target.gpu_arch,
            image=plan.pins.image,
            toolchain=plan.recipe.toolchain.name,
            model_source=recipe.model.source,
            dataset=None if cal.dataset == "builtin" else resolve_dataset(cal.dataset, path.parent).resolve(),
        )
    return list(jobs.values()), duplicates


def select(
    patterns: list[str] | tuple[str, ...], registry, *, toolchains_path: Path | None = None
) -> Selection:
    """Plan the recipes and drop every engine key the registry already has an engine for."""
    jobs, duplicates = plan_jobs(expand(patterns), toolchains_path=toolchains_path)
    selection = Selection(duplicates=duplicates)
    for job in jobs:
        hit = registry.find_by_build_key(job.engine_key, "engine")
        if hit is None:
            selection.jobs.append(job)
        else:
            selection.built[job.engine_key] = (job, hit.hash)
    return selection

"""Run a plan: never build a key twice, hold a lease while building, publish only verified engines.

Order of work for ``build_recipe``:
  1. plan (refuse floating references unless allowed) and look the engine key up: a hit returns at once;
  2. take the build lease for the engine key (others wait, then reuse the result): ``lease``;
  3. fingerprint the host through the toolchain and refuse an arch other than the recipe's;
  4. checkpoint: reuse one published under the checkpoint key, else fetch + quantize|convert and publish
     it: ``checkpoint``, ``fetch``;
  5. trtllm-build with the registry's timing cache, verify (``engine``, ``timing_cache``), publish the
     engine with its provenance (``publish``, ``provenance``).
Every step writes into a fresh directory removed again if the step fails or is interrupted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from trtbuild.build import workdir
from trtbuild.build.checkpoint import make_checkpoint
from trtbuild.build.context import BuildContext, BuildOptions, make_runner
from trtbuild.build.engine import build_engine
from trtbuild.build.lease import LeaseKeeper, acquire_or_wait, holder_id
from trtbuild.build.plan import Plan, plan_recipe
from trtbuild.build.publish import publish_engine
from trtbuild.errors import HostMismatch, InputError, ToolchainError
from trtbuild.host.preflight import preflight
from trtbuild.interrupt import sigterm_interrupts

if TYPE_CHECKING:
    from registry.api import Artifact, Registry
    from trtbuild.build.plan_pytorch import PytorchPlan
    from trtbuild.host.fingerprint import Fingerprint

__all__ = ["BuildOptions", "BuildResult", "build_recipe"]


@dataclass
class BuildResult:
    artifact: Artifact
    plan: Plan | PytorchPlan
    cache_hit: bool
    steps_run: list[str]
    seconds: float
    waited_for: str | None = None  # holder of the lease we waited on
    warnings: list[str] = field(default_factory=list)  # checks not run, a lease lost: shown with --json too

    def to_dict(self) -> dict[str, Any]:
        key = "engine_key" if self.plan.backend == "engine" else "serve_config_key"
        return {
            "hash": self.artifact.hash,
            "name": self.artifact.name,
            "kind": self.artifact.kind,
            "backend": self.plan.backend,
            key: self.plan.artifact_key,
            "checkpoint_key": self.plan.checkpoint_key,
            "cache_hit": self.cache_hit,
            "steps_run": self.steps_run,
            "seconds": round(self.seconds, 3),
            "waited_for": self.waited_for,
            "warnings": self.warnings,
        }


def build_recipe(
    recipe_path: Path | str, options: BuildOptions | None = None, *, registry: Registry | None = None
) -> BuildResult:
    """Build ``recipe_path`` into a verified, published engine (or return the one already published)."""
    options = options or BuildOptions()
    started = time.monotonic()
    plan = plan_recipe(recipe_path, toolchains_path=options.toolchains_path, locked=options.locked)
    if plan.pins.floating and not options.allow_unpinned:
        raise InputError(
            f"{plan.recipe.path}: refusing to build floating references: " + "; ".join(plan.pins.floating),
            hint=f"run `trtbuild lock {plan.recipe.path}` (or pass --allow-unpinned)",
        )
    if registry is None:
        from trtbuild.settings import open_registry

        registry = open_registry()
    hit = registry.find_by_build_key(plan.artifact_key, plan.artifact_kind)
    if hit is not None:
        return BuildResult(hit, plan, True, [], time.monotonic() - started)
    runner = make_runner(
        options.runner, allow_unpinned=options.allow_unpinned, memlock_limit=options.memlock_limit
    )
    # the steps share one context type; a pytorch plan is read back as such by trtbuild.build.pytorch
    ctx = BuildContext(cast(Plan, plan), options, registry, runner, started)
    preflight(ctx)  # doctor's checks for this runner: before any image is pulled or model fetched
    result = _under_lease(ctx)
    result.warnings = ctx.warnings
    return result


def _under_lease(ctx: BuildContext) -> BuildResult:
    """Build while holding the lease of the key of what the plan publishes last (the engine, or the serve
    config of a pytorch plan), or reuse what the lease's holder published."""
    key, kind, holder, reg = ctx.plan.artifact_key, ctx.plan.artifact_kind, holder_id(), ctx.registry

    def find() -> Artifact | None:
        return reg.find_by_build_key(key, kind)

    found, waited = acquire_or_wait(
        reg,
        key,
        holder,
        ttl_s=ctx.options.lease_ttl_s,
        timeout_s=ctx.options.wait_timeout_s,
        poll_s=ctx.options.poll_s,
        find=find,
        on_wait=ctx.event,
    )
    waited_for = "another builder" if waited else None
    if found is not None:
        return BuildResult(found, ctx.plan, True, [], ctx.elapsed(), waited_for)
    keeper = LeaseKeeper(reg, key, holder, ctx.options.lease_ttl_s).start()
    try:
        with sigterm_interrupts(), workdir.in_use(ctx.plan.dirs.logs.parent.parent):
            hit = find()  # finished while we were acquiring
            if hit is not None:
                return BuildResult(hit, ctx.plan, True, [], ctx.elapsed(), waited_for)
            if ctx.plan.backend == "pytorch":
                from trtbuild.build.pytorch import build_pytorch

                artifact = build_pytorch(ctx)
            else:
                artifact = _build(ctx)
            if keeper.lost:
                ctx.warn(
                    "the build lease expired during the build (catalog unreachable for a while): "
                    "another builder may have built this key too; content addressing keeps both intact"
                )
    finally:
        keeper.release()
    return BuildResult(artifact, ctx.plan, False, ctx.steps_run, ctx.elapsed(), waited_for)


def _build(ctx: BuildContext) -> Artifact:
    fingerprint = ctx.fingerprint(ctx.plan.step("build"))
    _check_host(ctx, fingerprint)
    check_toolchain(ctx, fingerprint)
    checkpoint_dir = make_checkpoint(ctx, fingerprint)
    engine_dir, verification = build_engine(ctx, checkpoint_dir)
    return publish_engine(ctx, engine_dir, verification, fingerprint)


def _check_host(ctx: BuildContext, fingerprint: Fingerprint) -> None:
    target = ctx.recipe.target.gpu_arch
    if fingerprint.gpu_arch and fingerprint.gpu_arch != target:
        raise HostMismatch(
            f"this host's GPUs are {fingerprint.gpu_name} ({fingerprint.gpu_arch}); "
            f"the recipe targets {target}",
            hint="build on a host with the target GPUs, or change target.gpu_arch",
        )
    if not fingerprint.gpu_arch:
        ctx.warn("no GPU seen by the toolchain: engine arch not checked against the host")


def check_toolchain(ctx: BuildContext, fingerprint: Fingerprint) -> None:
    tc = ctx.plan.recipe.toolchain
    found = fingerprint.trtllm_version
    if found and found != tc.trtllm_version:
        raise ToolchainError(
            f"{ctx.plan.pins.image} contains TensorRT-LLM {found}, "
            f"but toolchain {tc.name} pins {tc.trtllm_version}",
            hint="fix the image or trtllm_version of this toolchain in toolchains.toml",
        )

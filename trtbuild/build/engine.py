"""The engine build step: trtllm-build on the checkpoint with the registry's timing cache, then verify;
the engine directory gets the tokenizer and the provenance files before it is published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtbuild.build import timing_cache
from trtbuild.build.checkpoint import copy_tokenizer
from trtbuild.build.context import BuildContext
from trtbuild.build.plan import TIMING_CACHE, with_timing_cache
from trtbuild.build.provenance import write_provenance
from trtbuild.build.verify import verify_engine
from trtbuild.fsutil import clean_path_on_failure, fresh_dir


def build_engine(ctx: BuildContext, checkpoint_dir: Path) -> tuple[Path, dict[str, Any]]:
    """(engine directory, verification report) of the plan's build step."""
    plan, step = ctx.plan, ctx.plan.step("build")
    cache = fresh_dir(plan.dirs.cache) / TIMING_CACHE
    argv = with_timing_cache(step.argv or []) if timing_cache.pull(ctx.registry, plan, cache) else step.argv
    engine_dir = plan.dirs.engine
    with clean_path_on_failure(fresh_dir(engine_dir)):
        ctx.run(step, argv=argv)
        verification = verify_engine(engine_dir, plan.step("verify").params["expect"]).to_dict()
        ctx.steps_run.append("verify")
        copy_tokenizer(checkpoint_dir, engine_dir / "tokenizer")
        write_provenance(ctx, engine_dir, verification)
    timing_cache.push(ctx.registry, plan, cache)
    return engine_dir, verification

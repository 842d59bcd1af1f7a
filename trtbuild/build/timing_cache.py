"""The registry's TensorRT timing cache, one per (SM arch, TensorRT version): pulled before trtllm-build,
published back after it, so every build on that arch starts from the tactics already timed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from registry.api import NotFound, Registry
from trtbuild.build.plan import TIMING_CACHE, Plan
from trtbuild.build.provenance import timing_cache_identity
from trtbuild.fsutil import fresh_dir


def cache_name(plan: Plan) -> str:
    """``timing-cache-<arch>-trt<version>`` (the TensorRT-LLM version where TensorRT's is not pinned)."""
    tc = plan.recipe.toolchain
    version = f"trt{tc.tensorrt_version}" if tc.tensorrt_version else f"trtllm{tc.trtllm_version}"
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"timing-cache-{plan.recipe.recipe.target.gpu_arch}-{version}")


def pull(registry: Registry, plan: Plan, path: Path) -> bool:
    """Copy the published cache to ``path``; False when none is published yet."""
    try:
        found = registry.get(f"{cache_name(plan)}:latest")
    except NotFound:
        return False
    tmp = path.parent / "pulled"
    registry.pull(found.hash, tmp)
    shutil.copyfile(tmp / TIMING_CACHE, path)
    return True


def push(registry: Registry, plan: Plan, path: Path) -> None:
    """Publish the cache trtllm-build wrote at ``path`` (if it wrote one) as ``<name>:latest``."""
    if not path.is_file():
        return
    staging = fresh_dir(path.parent / "push")
    shutil.copyfile(path, staging / TIMING_CACHE)
    registry.push(staging, name=cache_name(plan), metadata=timing_cache_identity(plan), tag="latest")

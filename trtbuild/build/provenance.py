"""What a build records about its artifacts, through the registry's typed contract: the identity of each
kind (manifest metadata), the build facts (catalog provenance) and the provenance files kept inside an
engine (``trtbuild/``: recipe, lock, plan, step logs, verification)."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.api import BuildFacts, CheckpointMetadata, EngineMetadata, TimingCacheMetadata, digest_of
from trtbuild.settings import farm_job

if TYPE_CHECKING:
    from trtbuild.build.context import BuildContext
    from trtbuild.build.plan import Plan
    from trtbuild.host.fingerprint import Fingerprint
    from trtbuild.recipe.load import LoadedRecipe

PROVENANCE_DIR = "trtbuild"  # inside a published engine: recipe, lock, logs, verification


def recipe_digest(loaded: LoadedRecipe) -> str:
    """Digest of the recipe as validated: the same for any TOML layout, comments or key order."""
    return digest_of(loaded.recipe.model_dump(mode="json"))


def model_revision(plan: Plan) -> str | None:
    """What pins the model: the commit (hf://), the listing digest (s3://) or the content digest of a
    file:// checkpoint."""
    return plan.pins.revision or plan.step("fetch").params.get("content")


def _model_fields(plan: Plan, build_key: str) -> dict[str, Any]:
    r, tc = plan.recipe.recipe, plan.recipe.toolchain
    return {
        "build_key": build_key,
        "recipe_name": r.name,
        "recipe_digest": recipe_digest(plan.recipe),
        "model_source": r.model.source,
        "model_revision": model_revision(plan),
        "dtype": r.model.dtype,
        "quant_format": r.quantization.format,
        "kv_cache_quant": r.quantization.kv_cache,
        "tp": r.parallelism.tp,
        "pp": r.parallelism.pp,
        "toolchain": tc.name,
        "toolchain_image": plan.pins.image,
        "trtllm_version": tc.trtllm_version,
        "tensorrt_version": tc.tensorrt_version,
        "cuda_version": tc.cuda_version,
        "modelopt_version": tc.modelopt_version,
    }


def checkpoint_identity(plan: Plan) -> CheckpointMetadata:
    """What the checkpoint is: model, quantization, parallelism and toolchain (no shapes, no arch)."""
    return CheckpointMetadata(**_model_fields(plan, plan.checkpoint_key))


def engine_identity(plan: Plan) -> EngineMetadata:
    """What the engine is: the checkpoint's identity plus the SM arch and the shapes it was built for."""
    r = plan.recipe.recipe
    return EngineMetadata(
        **_model_fields(plan, plan.engine_key),
        gpu_arch=r.target.gpu_arch,
        max_batch_size=r.limits.max_batch_size,
        max_input_len=r.limits.max_input_len,
        max_seq_len=r.limits.max_seq_len,
        max_num_tokens=r.limits.max_num_tokens,
        max_beam_width=r.limits.max_beam_width,
    )


def timing_cache_identity(plan: Plan) -> TimingCacheMetadata:
    tc = plan.recipe.toolchain
    return TimingCacheMetadata(
        gpu_arch=plan.recipe.recipe.target.gpu_arch,
        tensorrt_version=tc.tensorrt_version,
        trtllm_version=tc.trtllm_version,
    )


def checkpoint_facts(fingerprint: Fingerprint) -> BuildFacts:
    return BuildFacts(host=socket.gethostname(), fingerprint=fingerprint.to_dict())


def engine_facts(ctx: BuildContext, fingerprint: Fingerprint, verification: dict[str, Any]) -> BuildFacts:
    return BuildFacts(
        host=socket.gethostname(),
        gpu_name=fingerprint.gpu_name,
        driver_version=fingerprint.driver_version,
        fingerprint=fingerprint.to_dict(),
        build_seconds=round(ctx.elapsed(), 3),
        verification=verification,
        steps_run=list(ctx.steps_run),
        checkpoint_key=ctx.plan.checkpoint_key,
        farm_job=farm_job(),
    )


def write_provenance(ctx: BuildContext, engine_dir: Path, verification: dict[str, Any]) -> None:
    """``engine_dir/trtbuild/``: the recipe, its lock (when fresh), the step logs, verification and plan."""
    plan = ctx.plan
    prov = engine_dir / PROVENANCE_DIR
    prov.mkdir()
    shutil.copyfile(plan.recipe.path, prov / "recipe.toml")
    lock = plan.recipe.path.with_suffix(".lock")
    if lock.exists() and plan.pins.lock_state == "fresh":
        shutil.copyfile(lock, prov / "recipe.lock")
    for log in ctx.logs:
        shutil.copyfile(log, prov / log.name)
    (prov / "verify.json").write_text(json.dumps(verification, indent=2))
    (prov / "plan.json").write_text(json.dumps(plan.to_dict(), indent=2))

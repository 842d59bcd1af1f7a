"""Run a backend = "pytorch" plan: checkpoint (reused, or fetched + quantized + verified + published), then
the serve config that points at it.

``build_recipe`` (orchestrator) looks the serve-config key up and holds its lease; this does the rest with
the same guarantees as the engine path (steps in fresh directories removed on failure, Ctrl-C cleans up,
only verified bytes are published). A checkpoint already in the registry under its key is *not* pulled: the
serve config needs only its hash and recorded facts, so changing ``[serve]`` publishes a new small config.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.api import FP8_MIN_ARCH, BuildFacts, HfCheckpointMetadata, ServeConfigMetadata
from trtbuild.build.checkpoint import copy_tokenizer
from trtbuild.build.fetch import fetch_model
from trtbuild.build.orchestrator import check_toolchain
from trtbuild.build.plan import HF_ALLOW_PATTERNS
from trtbuild.build.provenance import model_revision, recipe_digest
from trtbuild.build.serve_config import kv_estimate, write_serve_dir
from trtbuild.build.verify_hf import verify_hf_checkpoint
from trtbuild.fsutil import clean_path_on_failure, fresh_dir
from trtbuild.recipe.pytorch_checks import serve_world

if TYPE_CHECKING:
    from registry.api import Artifact
    from trtbuild.build.context import BuildContext
    from trtbuild.build.plan_pytorch import PytorchPlan

PROVENANCE_DIR = "trtbuild"  # inside the checkpoint: the quantize log and the verification


def build_pytorch(ctx: BuildContext) -> Artifact:
    ckpt, meta = _checkpoint(ctx)
    return _serve_config(ctx, ckpt, meta)


def _plan(ctx: BuildContext) -> PytorchPlan:
    plan: PytorchPlan = ctx.plan  # type: ignore[assignment]  # the context carries either kind of plan
    return plan


def _checkpoint(ctx: BuildContext) -> tuple[Artifact, HfCheckpointMetadata]:
    plan = _plan(ctx)
    with ctx.shared_artifact(plan.checkpoint_key, HfCheckpointMetadata.kind) as found:
        if found is None or not isinstance(found.metadata, HfCheckpointMetadata):
            return _make_checkpoint(ctx)
    ctx.event(f"checkpoint {plan.checkpoint_key[:19]} found in the registry: no fetch, no quantization")
    return found, found.metadata


def _make_checkpoint(ctx: BuildContext) -> tuple[Artifact, HfCheckpointMetadata]:
    """Fetch, quantize (or package) and verify the checkpoint, then publish it."""
    plan = _plan(ctx)
    step = plan.checkpoint_step
    fingerprint = None
    if step.image is not None:
        from trtbuild.host.fingerprint import collect_fingerprint

        fingerprint = collect_fingerprint(
            ctx.runner,
            step.image,
            gpus=ctx.gpus(step),
            extra_env=ctx.options.extra_env,
            extra_mounts=ctx.options.extra_mounts,
            secret_env=ctx.secret_env(),
            masked=ctx.masked(),
        )
        check_toolchain(ctx, fingerprint)
    model_dir = fetch_model(ctx)
    dest = plan.dirs.checkpoint
    with clean_path_on_failure(fresh_dir(dest)):
        if step.image is not None:
            ctx.run(step)
        else:
            _package(model_dir, dest)
            ctx.steps_run.append("package")
        copy_tokenizer(model_dir, dest)
        verification = verify_hf_checkpoint(dest, plan.step("verify").params["expect"]).to_dict()
        ctx.steps_run.append("verify")
        prov = dest / PROVENANCE_DIR
        prov.mkdir()
        for log in ctx.logs:
            shutil.copyfile(log, prov / log.name)
        (prov / "verify.json").write_text(json.dumps(verification, indent=2))
    meta = _checkpoint_meta(ctx, dest)
    facts = BuildFacts(
        host=socket.gethostname(),
        gpu_name=fingerprint.gpu_name if fingerprint else None,
        fingerprint=fingerprint.to_dict() if fingerprint else None,
        verification=verification,
        steps_run=list(ctx.steps_run),
    )
    artifact = ctx.registry.push(dest, name=f"{ctx.recipe.name}-checkpoint", metadata=meta, provenance=facts)
    ctx.registry.record_local_copy(dest, artifact)
    ctx.steps_run.append("publish-checkpoint")
    return artifact, meta


def _checkpoint_meta(ctx: BuildContext, dest: Path) -> HfCheckpointMetadata:
    plan, r, q = _plan(ctx), ctx.recipe, ctx.recipe.quantization
    tc, quantized = plan.recipe.toolchain, plan.checkpoint_step.image is not None
    cfg = json.loads((dest / "config.json").read_text("utf-8"))
    quant: dict[str, Any] = {}
    if (dest / "hf_quant_config.json").is_file():
        quant = json.loads((dest / "hf_quant_config.json").read_text("utf-8")).get("quantization") or {}
    heads, hidden = _int(cfg.get("num_attention_heads")), _int(cfg.get("hidden_size"))
    report = dest / "quantize_report.json"
    modelopt = json.loads(report.read_text())["versions"].get("modelopt") if report.is_file() else None
    return HfCheckpointMetadata(
        build_key=plan.checkpoint_key,
        recipe_name=r.name,
        recipe_digest=recipe_digest(plan.recipe),
        model_source=r.model.source,
        model_revision=model_revision(plan),  # type: ignore[arg-type]
        dtype=r.model.dtype,
        quant_format=q.format,
        kv_cache_quant=q.kv_cache,
        toolchain=tc.name if quantized else None,
        toolchain_image=plan.pins.image if quantized else None,
        trtllm_version=tc.trtllm_version if quantized else None,
        modelopt_version=modelopt,
        quant_algo=quant.get("quant_algo"),
        kv_cache_quant_algo=quant.get("kv_cache_quant_algo"),
        min_gpu_arch=FP8_MIN_ARCH if q.uses_fp8 else None,
        architecture=(cfg.get("architectures") or [None])[0],
        num_hidden_layers=_int(cfg.get("num_hidden_layers")),
        num_key_value_heads=_int(cfg.get("num_key_value_heads")) or heads,
        head_dim=_int(cfg.get("head_dim")) or (hidden // heads if hidden and heads else None),
        max_position_embeddings=_int(cfg.get("max_position_embeddings")),
        weights_bytes=sum(p.stat().st_size for p in dest.glob("*.safetensors")),
    )


def _serve_config(ctx: BuildContext, ckpt: Artifact, cmeta: HfCheckpointMetadata) -> Artifact:
    plan, r = _plan(ctx), ctx.recipe
    step, tc = plan.step("serve-config"), plan.recipe.toolchain
    tp, pp = serve_world(r)
    kv_cfg = r.serve.get("kv_cache_config")
    kv_dtype = kv_cfg.get("dtype") if isinstance(kv_cfg, dict) else None
    fp8_kv = isinstance(kv_dtype, str) and kv_dtype.lower().startswith("fp8")
    tokens, tokens_from = kv_estimate(r.serve, cmeta.max_position_embeddings)
    meta = ServeConfigMetadata(
        build_key=plan.serve_config_key,
        recipe_name=r.name,
        recipe_digest=recipe_digest(plan.recipe),
        model_source=cmeta.model_source,
        model_revision=cmeta.model_revision,
        dtype=cmeta.dtype,
        quant_format=cmeta.quant_format,
        kv_cache_quant=cmeta.kv_cache_quant,
        tp=tp,
        pp=pp,
        toolchain=tc.name,
        toolchain_image=plan.pins.image,
        trtllm_version=tc.trtllm_version,
        modelopt_version=cmeta.modelopt_version,
        checkpoint=ckpt.hash,
        checkpoint_build_key=plan.checkpoint_key,
        llm_api_spec=step.params["llm_api_spec"],
        llm_api_commit=step.params["llm_api_commit"],
        gpu_arch=r.target.gpu_arch,
        min_gpu_arch=cmeta.min_gpu_arch,
        max_batch_size=_int(r.serve.get("max_batch_size")),
        max_seq_len=_int(r.serve.get("max_seq_len")),
        max_num_tokens=_int(r.serve.get("max_num_tokens")),
        weights_bytes=cmeta.weights_bytes,
        kv_bytes_per_token=cmeta.kv_bytes_per_token("fp8" if fp8_kv else None),
        kv_tokens=tokens,
        kv_tokens_from=tokens_from,
    )
    dest = plan.dirs.serve
    lock = plan.recipe.path.with_suffix(".lock")
    with clean_path_on_failure(fresh_dir(dest)):
        write_serve_dir(
            dest,
            r.serve,
            {**meta.to_dict(), "checkpoint_name": ckpt.name},
            plan.recipe.path,
            lock if lock.exists() and plan.pins.lock_state == "fresh" else None,
            plan.to_dict(),
        )
    ctx.steps_run.append("serve-config")
    facts = BuildFacts(
        host=socket.gethostname(), build_seconds=round(ctx.elapsed(), 3), steps_run=list(ctx.steps_run)
    )
    artifact = ctx.registry.push(dest, name=r.name, metadata=meta, provenance=facts, tag=ctx.options.tag)
    ctx.steps_run.append("publish")
    return artifact


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _package(model_dir: Path, dest: Path) -> None:
    """The unquantized checkpoint: the model's weights, configs and tokenizer (hard links when possible)."""
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and any(fnmatch(path.name, pattern) for pattern in HF_ALLOW_PATTERNS):
            try:
                os.link(path, dest / path.name)
            except OSError:
                shutil.copy2(path, dest / path.name)

"""The verify step: the engine directory agrees with the recipe before anything is published.

Checks the layout (config.json + one ``rank{N}.engine`` per rank, nothing missing or extra) and that the
engine's config.json carries the toolchain's version, the recipe's mapping, quantization, dtype,
architecture and KV-cache type, and the limits and plugin switches trtllm-build saves for this recipe.
trtllm-build normalises limits and overrides switches before saving (``trtbuild.recipe.engine_config``),
so the expected values are computed the way it computes them, from the engine's own checkpoint config
(positions, rope scaling, architecture, quantization), not copied from the recipe.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.api import arch_number
from trtbuild.errors import TrtbuildError
from trtbuild.recipe.engine_config import (
    KV_ALGO_OF_CACHE,
    QUANT_ALGO_OF_FORMAT,
    SAVED_IN_PLUGIN_CONFIG,
    Checkpoint,
    EngineLimits,
    Override,
    Switches,
    builder_switches,
    engine_limits,
    parser_switches,
    speculative_of,
)

# quant_algo values TensorRT-LLM writes for each recipe format (QuantAlgo names).
QUANT_ALGOS = {
    "none": (None,),
    "fp8": ("FP8",),
    "int4_awq": ("W4A16_AWQ",),
    "int8_sq": (
        "W8A8_SQ_PER_CHANNEL",
        "W8A8_SQ_PER_TENSOR_PLUGIN",
        "W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN",
        "W8A8_SQ_PER_CHANNEL_PER_TENSOR_PLUGIN",
        "W8A8_SQ_PER_TENSOR_PER_TOKEN_PLUGIN",
    ),
}
KV_ALGOS = {"none": (None,), "fp8": ("FP8",), "int8": ("INT8",)}
RANK_ENGINE = re.compile(r"^rank(\d+)\.engine$")
DTYPE_PLUGINS = ("gemm_plugin", "gpt_attention_plugin", "low_latency_gemm_plugin", "gemm_swiglu_plugin")
LIMIT_FIELDS = (
    "max_batch_size",
    "max_input_len",
    "max_seq_len",
    "max_num_tokens",
    "opt_num_tokens",
    "max_beam_width",
)


class VerifyFailed(TrtbuildError):
    """The built engine does not match its recipe; it is not published."""


@dataclass
class VerifyReport:
    checks: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.checks)

    def add(self, name: str, expected: object, found: object, ok: bool | None = None) -> None:
        self.checks.append(
            {
                "check": name,
                "expected": expected,
                "found": found,
                "ok": (expected == found) if ok is None else ok,
            }
        )

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": self.checks}

    def raise_if_failed(self, what: Path, artifact: str, hint: str) -> None:
        """VerifyFailed naming every failed check, when any failed (``artifact``: "engine", ...)."""
        if self.ok:
            return
        failed = "; ".join(
            f"{c['check']}: expected {c['expected']!r}, found {c['found']!r}"
            for c in self.checks
            if not c["ok"]
        )
        raise VerifyFailed(f"{what}: {artifact} does not match the recipe: {failed}", hint=hint)


@dataclass(frozen=True)
class Prediction:
    """What trtllm-build will save for a recipe: limits, plugin switches, every change from the request."""

    limits: EngineLimits
    switches: Switches
    changes: list[Override]


def expectations(recipe: Any, toolchain: Any, facts: Any, *, quantized: bool) -> dict[str, Any]:
    """The verify step's parameters: what the recipe asks trtllm-build for (JSON, part of the step's key)."""
    b = recipe.build
    explicit = {name: getattr(b, name) for name in Switches.__dataclass_fields__}
    mode, draft = speculative_of(b.extra_args)
    return {
        "trtllm_version": toolchain.trtllm_version,
        "gpu_arch": recipe.target.gpu_arch,
        "tp": recipe.parallelism.tp,
        "pp": recipe.parallelism.pp,
        "format": recipe.quantization.format,
        "kv_cache": recipe.quantization.kv_cache,
        "dtype": expected_dtype(recipe.model.dtype, facts.raw if facts else None, quantized=quantized),
        "architecture": recipe.model.architecture or (facts.architecture if facts else None),
        "kv_cache_type": b.kv_cache_type,
        "limits": recipe.limits.model_dump(mode="json"),
        "opt_num_tokens": b.opt_num_tokens,
        "switches": parser_switches(explicit, toolchain.spec_family).to_dict(),
        "plugins": {name: getattr(b, name) for name in DTYPE_PLUGINS if getattr(b, name) is not None},
        "speculative": [mode, draft],
        "flags": {
            "use_strip_plan": b.strip_plan,
            "weight_streaming": b.weight_streaming,
            "gather_context_logits": b.gather_context_logits or "--gather_all_token_logits" in b.extra_args,
        },
    }


def expected_dtype(dtype: str, hf_config: dict | None, *, quantized: bool) -> str | None:
    """The checkpoint dtype the engine will carry; None when it cannot be known before the build."""
    if quantized:  # trtbuild's own driver: its export rule (float16 or bfloat16 only)
        from trtbuild.quantize.driver import export_dtype

        return export_dtype(dtype, hf_config or {})[0] if dtype != "auto" or hf_config else None
    if dtype != "auto":
        return dtype
    found = (hf_config or {}).get("torch_dtype") or (hf_config or {}).get("dtype")
    return found if found in ("float16", "bfloat16") else None  # convert_checkpoint's own inference otherwise


def predict(expect: dict[str, Any], ckpt: Checkpoint, *, checkpoint_known: bool = True) -> Prediction:
    """The limits and switches trtllm-build saves for ``expect`` (verify params) and checkpoint ``ckpt``."""
    sw = Switches.from_dict(expect["switches"])
    limits, limit_changes = engine_limits(
        expect["limits"],
        sw,
        opt_num_tokens=expect["opt_num_tokens"],
        max_position_embeddings=ckpt.max_position_embeddings,
        rotary_scaling=ckpt.rotary_scaling,
        checkpoint_known=checkpoint_known,
        speculative=(expect["speculative"][0], int(expect["speculative"][1])),
    )
    saved, switch_changes = builder_switches(sw, ckpt, arch_number(expect["gpu_arch"]))
    return Prediction(limits, saved, limit_changes + switch_changes)


def planned_checkpoint(expect: dict[str, Any], hf_config: dict | None) -> Checkpoint:
    """The checkpoint the plan will produce, as far as it is known before any step runs."""
    cfg = hf_config or {}
    mpe = cfg.get("max_position_embeddings")
    scaling = cfg.get("rope_scaling")
    return Checkpoint(
        architecture=expect["architecture"],
        quant_algo=QUANT_ALGO_OF_FORMAT[expect["format"]],
        kv_cache_quant_algo=KV_ALGO_OF_CACHE[expect["kv_cache"]],
        tp=expect["tp"],
        max_position_embeddings=mpe if isinstance(mpe, int) else None,
        rotary_scaling=scaling if isinstance(scaling, dict) else None,
    )


def verify_engine(engine_dir: Path, expect: dict) -> VerifyReport:
    """Compare ``engine_dir`` with ``expect`` (the verify step's params); raise VerifyFailed on mismatch."""
    report = VerifyReport()
    config_path = engine_dir / "config.json"
    try:
        config = json.loads(config_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise VerifyFailed(
            f"{config_path}: missing or not JSON ({exc})",
            hint="look at the build log: trtllm-build did not finish writing the engine",
        ) from None
    world = expect["tp"] * expect["pp"]
    ranks = sorted(int(m.group(1)) for p in engine_dir.iterdir() if (m := RANK_ENGINE.match(p.name)))
    report.add("rank engines", list(range(world)), ranks)
    empty = [f"rank{r}.engine" for r in ranks if (engine_dir / f"rank{r}.engine").stat().st_size == 0]
    report.add("engines non-empty", [], empty)
    report.add("top-level keys", ["build_config", "pretrained_config", "version"], sorted(config))
    report.add("trtllm version", expect["trtllm_version"], config.get("version"))
    pretrained = config.get("pretrained_config") or {}
    build = config.get("build_config") or {}
    _check_checkpoint(report, expect, pretrained, world)
    _check_build_config(report, expect, build, predict(expect, Checkpoint.from_pretrained_config(pretrained)))
    report.raise_if_failed(
        engine_dir, "engine", "the engine was not published; check the toolchain pin and the build log"
    )
    return report


def _check_checkpoint(report: VerifyReport, expect: dict, pretrained: dict, world: int) -> None:
    mapping = pretrained.get("mapping") or {}
    report.add("mapping.tp_size", expect["tp"], mapping.get("tp_size"))
    report.add("mapping.pp_size", expect["pp"], mapping.get("pp_size"))
    report.add("mapping.world_size", world, mapping.get("world_size"))
    quant = pretrained.get("quantization") or {}
    allowed = QUANT_ALGOS[expect["format"]]
    report.add(
        "quantization.quant_algo", list(allowed), quant.get("quant_algo"), quant.get("quant_algo") in allowed
    )
    kv_allowed = KV_ALGOS[expect["kv_cache"]]
    found_kv = quant.get("kv_cache_quant_algo")
    report.add("quantization.kv_cache_quant_algo", list(kv_allowed), found_kv, found_kv in kv_allowed)
    for name in ("dtype", "architecture"):
        if expect[name] is not None:
            report.add(f"pretrained_config.{name}", expect[name], pretrained.get(name))


def _check_build_config(report: VerifyReport, expect: dict, build: dict, pred: Prediction) -> None:
    report.add("build_config.kv_cache_type", expect["kv_cache_type"].upper(), build.get("kv_cache_type"))
    for name in LIMIT_FIELDS:
        value = getattr(pred.limits, name)
        if value is not None:
            report.add(f"build_config.{name}", value, build.get(name))
    plugin = build.get("plugin_config") or {}
    for name in SAVED_IN_PLUGIN_CONFIG:
        report.add(f"build_config.plugin_config.{name}", getattr(pred.switches, name), plugin.get(name))
    dtype = expect["dtype"]
    for name, value in expect["plugins"].items():
        found = plugin.get(name)
        if value == "disable":
            report.add(f"build_config.plugin_config.{name}", None, found)
        elif value == "auto":  # stored as "auto", or resolved to the checkpoint dtype
            allowed = ["auto", dtype] if dtype else ["auto", "float16", "bfloat16", "float32"]
            report.add(f"build_config.plugin_config.{name}", allowed, found, found in allowed)
        else:
            report.add(f"build_config.plugin_config.{name}", value, found)
    for name, value in expect["flags"].items():
        if value:  # a False flag may still be set by the builder (a pruned checkpoint strips the plan)
            report.add(f"build_config.{name}", True, build.get(name))

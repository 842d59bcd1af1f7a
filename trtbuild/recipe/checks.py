"""Cross-field recipe rules: what a typed schema cannot say on its own.

Each check yields ``Problem(field, message, fix, value)``; ``trtbuild.recipe.load`` adds the file name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path

from trtbuild.recipe import cli_spec
from trtbuild.recipe.build_rules import check_build_rules
from trtbuild.recipe.model_config import ModelFacts
from trtbuild.recipe.problem import Problem
from trtbuild.recipe.schema import BUILD_SWITCH_FLAGS, Recipe
from trtbuild.recipe.toolchain import (
    Toolchain,
    arch_number,
)

MAX_GPUS_PER_NODE = 8
FP8_MIN_ARCH = 89

# trtllm-build flags trtbuild sets itself, and the recipe field that controls each.
MANAGED_BUILD_FLAGS: dict[str, str] = {
    "--checkpoint_dir": "(set by trtbuild)",
    "--model_config": "(set by trtbuild)",
    "--build_config": "(set by trtbuild)",
    "--output_dir": "(set by trtbuild)",
    "--workers": "(set by trtbuild from parallelism and the GPUs present)",
    "--input_timing_cache": "(set by trtbuild from the registry's timing cache)",
    "--output_timing_cache": "(set by trtbuild)",
    "--max_batch_size": "limits.max_batch_size",
    "--max_input_len": "limits.max_input_len",
    "--max_seq_len": "limits.max_seq_len",
    "--max_decoder_seq_len": "limits.max_seq_len",
    "--max_num_tokens": "limits.max_num_tokens",
    "--max_beam_width": "limits.max_beam_width",
    "--paged_kv_cache": "build.kv_cache_type",
    "--dry_run": "(use trtbuild build --dry-run)",
    **{flag: f"build.{field}" for field, flag in BUILD_SWITCH_FLAGS.items()},
}


__all__ = ["Problem", "check_recipe", "did_you_mean", "resolve_dataset"]


def did_you_mean(word: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(sorted(options))}"


def check_recipe(
    recipe: Recipe, toolchains: dict[str, Toolchain], facts: ModelFacts | None, recipe_dir: Path
) -> list[Problem]:
    from trtbuild.recipe import pytorch_checks

    tc = toolchains.get(recipe.target.toolchain)
    if pytorch_checks.effective_backend(recipe, tc) == "pytorch":
        return [
            problem
            for check in (
                _check_toolchain(recipe, toolchains),
                _check_calibration(recipe, recipe_dir),
                _check_architecture(recipe, facts),
                pytorch_checks.check_pytorch(recipe, tc, facts),
            )
            for problem in check
        ]
    engine_tc = tc if tc is not None and tc.builds_engines else None
    checks = (
        _check_toolchain(recipe, toolchains),
        pytorch_checks.check_engine_backend(recipe, tc),
        _check_parallelism(recipe, facts),
        _check_limits(recipe, facts),
        _check_quantization(recipe, facts),
        _check_calibration(recipe, recipe_dir),
        _check_architecture(recipe, facts),
        _check_extra_args(recipe, engine_tc),
        check_build_rules(recipe, engine_tc, facts) if engine_tc else iter(()),
    )
    return [problem for check in checks for problem in check]


def _check_toolchain(recipe: Recipe, toolchains: dict[str, Toolchain]) -> Iterator[Problem]:
    name = recipe.target.toolchain
    tc = toolchains.get(name)
    if tc is None:
        yield Problem(
            "target.toolchain",
            "not a pinned toolchain",
            f"use a name from recipes/toolchains.toml: {did_you_mean(name, tuple(toolchains))}",
            name,
        )
        return
    if recipe.target.gpu_arch not in tc.supported_archs:
        yield Problem(
            "target.gpu_arch",
            f"toolchain {name} does not support this arch",
            f"use one of {', '.join(tc.supported_archs)} or another toolchain",
            recipe.target.gpu_arch,
        )


def _check_parallelism(recipe: Recipe, facts: ModelFacts | None) -> Iterator[Problem]:
    tp, pp = recipe.parallelism.tp, recipe.parallelism.pp
    if tp * pp > MAX_GPUS_PER_NODE:
        yield Problem(
            "parallelism",
            f"tp × pp = {tp * pp} GPUs; at most {MAX_GPUS_PER_NODE} per node are supported",
            "lower parallelism.tp or parallelism.pp so that tp × pp ≤ 8",
            {"tp": tp, "pp": pp},
        )
    if facts is None or recipe.quantization.needs_quantize_step:
        return  # quantized checkpoints: the quantize driver's own shape rules (_check_quantize_shapes)
    heads, kv = facts.num_attention_heads, facts.num_key_value_heads
    if heads and heads % tp:
        yield Problem(
            "parallelism.tp",
            f"{heads} attention heads ({facts.source}) are not divisible by tp",
            f"use a tp that divides {heads}: {_divisors(heads, MAX_GPUS_PER_NODE)}",
            tp,
        )
    elif kv and kv % tp and tp % kv:
        yield Problem(
            "parallelism.tp",
            f"{kv} key/value heads cannot be split or replicated over tp",
            f"use a tp that divides {kv} or is a multiple of it",
            tp,
        )
    layers = facts.num_hidden_layers
    if layers and pp > layers:
        yield Problem(
            "parallelism.pp", f"pp is larger than the model's {layers} layers", f"use pp ≤ {layers}", pp
        )


def _divisors(n: int, limit: int) -> str:
    return ", ".join(str(d) for d in range(1, limit + 1) if n % d == 0)


def _check_limits(recipe: Recipe, facts: ModelFacts | None) -> Iterator[Problem]:
    lim = recipe.limits
    if lim.max_seq_len is not None and lim.max_input_len > lim.max_seq_len:
        yield Problem(
            "limits.max_input_len",
            f"larger than limits.max_seq_len ({lim.max_seq_len})",
            "lower limits.max_input_len or raise limits.max_seq_len",
            lim.max_input_len,
        )
    limit = facts.max_seq_len_limit if facts else None
    if facts is not None and limit is not None:
        if lim.max_seq_len is not None and lim.max_seq_len > limit:
            yield Problem(
                "limits.max_seq_len",
                f"beyond the model's max_position_embeddings × rope factor = {limit} ({facts.source})",
                f"use limits.max_seq_len ≤ {limit}",
                lim.max_seq_len,
            )
        if lim.max_seq_len is None and lim.max_input_len > limit:
            yield Problem(
                "limits.max_input_len",
                f"beyond the model's maximum sequence length {limit}",
                f"use limits.max_input_len ≤ {limit}",
                lim.max_input_len,
            )
    if recipe.build.kv_cache_type != "paged" and recipe.build.use_paged_context_fmha:
        yield Problem(
            "build.use_paged_context_fmha",
            "needs a paged KV cache",
            'set build.kv_cache_type = "paged" or drop use_paged_context_fmha',
            recipe.build.kv_cache_type,
        )


def _check_quantization(recipe: Recipe, facts: ModelFacts | None) -> Iterator[Problem]:
    q, b = recipe.quantization, recipe.build
    arch = arch_number(recipe.target.gpu_arch)
    fp8_uses = [
        ("quantization.format", q.format == "fp8", q.format),
        ("quantization.kv_cache", q.kv_cache == "fp8", q.kv_cache),
        ("build.gemm_plugin", b.gemm_plugin == "fp8", b.gemm_plugin),
        ("build.low_latency_gemm_plugin", b.low_latency_gemm_plugin == "fp8", b.low_latency_gemm_plugin),
        ("build.gemm_swiglu_plugin", b.gemm_swiglu_plugin == "fp8", b.gemm_swiglu_plugin),
        ("build.use_fp8_context_fmha", bool(b.use_fp8_context_fmha), b.use_fp8_context_fmha),
    ]
    if arch < FP8_MIN_ARCH:
        for field, used, value in fp8_uses:
            if used:
                yield Problem(
                    field,
                    f"FP8 needs sm89 or newer; target.gpu_arch is {recipe.target.gpu_arch}",
                    "target an FP8-capable GPU (sm89 Ada, sm90 H100/H200) or drop FP8",
                    value,
                )
    if q.format == "fp8" and q.kv_cache == "int8":
        yield Problem(
            "quantization.kv_cache",
            "an INT8 KV cache with FP8 weights is not a combination TensorRT-LLM builds",
            'use kv_cache = "fp8" with format = "fp8"',
            q.kv_cache,
        )
    if q.kv_cache != "none" and b.kv_cache_type == "disabled":
        yield Problem(
            "quantization.kv_cache",
            "KV-cache quantization needs a KV cache (build.kv_cache_type is disabled)",
            'set quantization.kv_cache = "none" or build.kv_cache_type = "paged"',
            q.kv_cache,
        )
    for field, used, value in fp8_uses[2:5]:
        if used and q.format != "fp8":
            yield Problem(
                field,
                'the FP8 GEMM plugins need quantization.format = "fp8"',
                'quantize to FP8 or use gemm_plugin = "auto"',
                value,
            )
    if q.needs_quantize_step and facts is not None:
        yield from _check_quantize_shapes(recipe, facts)


def _check_quantize_shapes(recipe: Recipe, facts: ModelFacts) -> Iterator[Problem]:
    """The quantize driver's rules (ModelOpt's export: heads, sizes, layers, AWQ blocks), before GPU time."""
    from trtbuild.quantize.shapes import check_shapes, errors_only

    q, par = recipe.quantization, recipe.parallelism
    for p in errors_only(check_shapes(facts.raw, q.qformat, par.tp, par.pp, q.awq_block_size)):
        yield Problem(p.field, f"{p.message} ({facts.source})", p.fix, p.value)


def _check_calibration(recipe: Recipe, recipe_dir: Path) -> Iterator[Problem]:
    dataset = recipe.quantization.calibration.dataset
    if dataset == "builtin" or not recipe.quantization.needs_quantize_step:
        return
    fix = 'give a local .jsonl or .txt file (relative to the recipe) or "builtin"'
    if "://" in dataset:
        yield Problem("quantization.calibration.dataset", "a local path, not a URL", fix, dataset[:200])
        return
    try:
        path = resolve_dataset(dataset, recipe_dir)
        found = path.is_file()
    except (OSError, RuntimeError, ValueError) as exc:  # ~nosuchuser, a name too long, a NUL ...
        yield Problem(
            "quantization.calibration.dataset", f"cannot use this path: {exc}"[:300], fix, dataset[:200]
        )
        return
    if not found:
        yield Problem(
            "quantization.calibration.dataset",
            f"file not found: {path}",
            'give a local .jsonl or .txt file (relative to the recipe) or "builtin"',
            dataset,
        )
    elif path.suffix not in (".jsonl", ".txt"):
        yield Problem(
            "quantization.calibration.dataset",
            "unsupported calibration file type",
            'use a .jsonl file (one {"text": ...} per line) or a .txt file (one sample per line)',
            dataset,
        )


def resolve_dataset(dataset: str, recipe_dir: Path) -> Path:
    path = Path(dataset).expanduser()
    return path if path.is_absolute() else (recipe_dir / path)


def _check_architecture(recipe: Recipe, facts: ModelFacts | None) -> Iterator[Problem]:
    declared = recipe.model.architecture
    if facts is not None and declared and facts.architecture and declared != facts.architecture:
        yield Problem(
            "model.architecture",
            f"the checkpoint's config.json says {facts.architecture}",
            f'set model.architecture = "{facts.architecture}" or remove it',
            declared,
        )


def _check_extra_args(recipe: Recipe, tc: Toolchain | None) -> Iterator[Problem]:
    args = recipe.build.extra_args
    if not args or tc is None:
        return
    known = cli_spec.flags("trtllm-build", tc.spec_family)
    for token in args:
        name = token.partition("=")[0]
        if name.startswith("--") and name in MANAGED_BUILD_FLAGS:
            yield Problem(
                "build.extra_args",
                f"{name} is set by trtbuild",
                f"use {MANAGED_BUILD_FLAGS[name]} instead of extra_args",
                token,
            )
        elif name.startswith("--") and name not in known:
            close = difflib.get_close_matches(name, [f for f in known if f not in MANAGED_BUILD_FLAGS], n=1)
            yield Problem(
                "build.extra_args",
                f"{name} is not a flag of trtllm-build {tc.trtllm_version}",
                f"did you mean {close[0]!r}?"
                if close
                else f"remove it: the CLI of trtllm-build {tc.trtllm_version} has no such flag",
                token,
            )
    for problem in _extra_arg_value_problems(args, tc):
        yield Problem("build.extra_args", problem, "give each flag a value trtllm-build accepts", list(args))


def _extra_arg_value_problems(args: list[str], tc: Toolchain) -> list[str]:
    """Value problems only; unknown and managed flags are reported above."""
    return [
        p
        for p in cli_spec.check_argv(list(args), "trtllm-build", tc.spec_family)
        if not p.startswith("unrecognized argument")
    ]

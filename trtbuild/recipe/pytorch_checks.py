"""The backend of a recipe, and the rules of the PyTorch-backend path.

``[target] backend`` is ``engine`` (TensorRT engines built with trtllm-build) or ``pytorch`` (a quantized
Hugging Face checkpoint served by ``trtllm-serve --config``). Left out, it is the toolchain's default:
engine where the toolchain still has trtllm-build, pytorch after 1.3.0rc20. The PyTorch backend is allowed
from TensorRT-LLM 1.2 on (TensorRT-LLM docs/source/features/quantization.md @09d4c79b).

A pytorch recipe puts its deployment options in ``[serve]`` (the LLM-API YAML, checked against the pinned
release's recorded TorchLlmArgs); ``[parallelism]``, ``[limits]`` and ``[build]`` describe engines and are
refused with a pointer to the ``[serve]`` key that replaces them.
"""

from __future__ import annotations

from collections.abc import Iterator

from registry.api import arch_number
from trtbuild.recipe.checks import FP8_MIN_ARCH, MAX_GPUS_PER_NODE, Problem
from trtbuild.recipe.llmapi_spec import check_config, source
from trtbuild.recipe.model_config import ModelFacts
from trtbuild.recipe.schema import Recipe
from trtbuild.recipe.toolchain import Toolchain

ENGINE_ONLY_TABLES = {
    "parallelism": "set serve.tensor_parallel_size / serve.pipeline_parallel_size (chosen at deployment; "
    "the checkpoint serves any TP)",
    "limits": "set serve.max_batch_size / max_num_tokens / max_seq_len / max_input_len / max_beam_width",
    "build": "trtllm-build switches do not apply to the PyTorch backend; remove [build]",
}
INT8_SQ_REASON = (
    "INT8 SmoothQuant exists only on the engine path: the PyTorch backend's quantization matrix lists FP8 "
    "(per tensor, block scaling, rowwise), FP8 KV cache, W4A16/W4A8 AWQ and GPTQ, not W8A8 SmoothQuant, and "
    "ModelOpt's HF export routes int8_smoothquant to the legacy TensorRT-LLM checkpoint"
)


def effective_backend(recipe: Recipe, tc: Toolchain | None) -> str:
    """The backend the recipe asks for, else the toolchain's default (engine when unknown)."""
    if recipe.target.backend is not None:
        return recipe.target.backend
    return tc.default_backend if tc is not None else "engine"


def check_engine_backend(recipe: Recipe, tc: Toolchain | None) -> Iterator[Problem]:
    """An engine recipe needs a toolchain with trtllm-build and has no [serve] table."""
    if tc is not None and not tc.builds_engines:
        yield Problem(
            "target.backend",
            f"toolchain {tc.name} (TensorRT-LLM {tc.trtllm_version}) has no trtllm-build: "
            "TensorRT engines were removed after 1.3.0rc20",
            'set [target] backend = "pytorch" (a quantized Hugging Face checkpoint served by trtllm-serve), '
            "or pin an engine toolchain (1.2.1 or older, or 1.3.0rc20)",
            recipe.target.backend or "engine (default)",
        )
    if recipe.serve:
        yield Problem(
            "serve",
            '[serve] holds LLM-API options for backend = "pytorch"; an engine fixes its limits at build time',
            'put engine limits in [limits], or set [target] backend = "pytorch"',
            sorted(recipe.serve),
        )


def serve_world(recipe: Recipe) -> tuple[int, int]:
    """(tp, pp) the serve config asks for (LLM-API defaults 1 and 1)."""
    tp, pp = recipe.serve.get("tensor_parallel_size", 1), recipe.serve.get("pipeline_parallel_size", 1)
    return (tp if isinstance(tp, int) else 1), (pp if isinstance(pp, int) else 1)


def check_pytorch(recipe: Recipe, tc: Toolchain | None, facts: ModelFacts | None) -> Iterator[Problem]:
    """The rules of a backend = "pytorch" recipe."""
    if tc is not None and not tc.serves_pytorch_backend:
        yield Problem(
            "target.backend",
            f"TensorRT-LLM {tc.trtllm_version} ({tc.name}) predates the PyTorch-backend serving path "
            "(1.2 and later)",
            'pin a 1.2.x or newer toolchain, or use backend = "engine"',
            "pytorch",
        )
    for table, fix in ENGINE_ONLY_TABLES.items():
        if table in recipe.model_fields_set:
            yield Problem(
                table, f'[{table}] describes a TensorRT engine; this recipe has backend = "pytorch"', fix
            )
    yield from _check_formats(recipe)
    yield from _check_serve(recipe, tc)
    if facts is not None:
        yield from _check_model_fit(recipe, facts)


def _check_formats(recipe: Recipe) -> Iterator[Problem]:
    q = recipe.quantization
    if q.format == "int8_sq":
        yield Problem(
            "quantization.format",
            INT8_SQ_REASON,
            'use "fp8" or "int4_awq", or backend = "engine" with a 1.3.0rc20-or-older toolchain',
            q.format,
        )
    if q.kv_cache == "int8":
        yield Problem(
            "quantization.kv_cache",
            "the PyTorch backend's quantization matrix has an FP8 KV cache, not INT8",
            'use kv_cache = "fp8" or "none"',
            q.kv_cache,
        )
    arch = recipe.target.gpu_arch
    kv_dtype = (
        (recipe.serve.get("kv_cache_config") or {}).get("dtype")
        if isinstance(recipe.serve.get("kv_cache_config"), dict)
        else None
    )
    fp8 = [
        ("quantization.format", q.format),
        ("quantization.kv_cache", q.kv_cache),
        ("serve.kv_cache_config.dtype", kv_dtype),
    ]
    if arch_number(arch) < FP8_MIN_ARCH:
        for field, value in fp8:
            if isinstance(value, str) and value.lower().startswith("fp8"):
                yield Problem(
                    field,
                    f"FP8 needs sm89 or newer; target.gpu_arch is {arch}",
                    "target an FP8-capable GPU (sm89 Ada, sm90 H100/H200) or drop FP8",
                    value,
                )


def _check_serve(recipe: Recipe, tc: Toolchain | None) -> Iterator[Problem]:
    if tc is None:
        return
    if tc.llm_api_spec is None:
        if recipe.serve:
            yield Problem(
                "serve",
                f"no LLM-API field list is recorded for toolchain {tc.name} "
                f"(TensorRT-LLM {tc.trtllm_version}), so [serve] cannot be checked",
                "record TorchLlmArgs of that release (trtbuild/data/trtllm_llmapi_spec.json) and name it in "
                "the pin's llm_api_spec, or leave [serve] empty",
                sorted(recipe.serve),
            )
        return
    src = source(tc.llm_api_spec)
    for p in check_config(recipe.serve, tc.llm_api_spec):
        fix = p.fix if "record" in p.fix else f"{p.fix} (TorchLlmArgs @{src['commit'][:8]})"
        yield Problem(f"serve.{p.path}", p.message, fix, p.value)
    tp, pp = serve_world(recipe)
    if tp < 1 or pp < 1 or tp * pp > MAX_GPUS_PER_NODE:
        yield Problem(
            "serve.tensor_parallel_size",
            f"tensor × pipeline parallel = {tp} × {pp}; 1 to {MAX_GPUS_PER_NODE} GPUs per node are supported",
            "lower serve.tensor_parallel_size or serve.pipeline_parallel_size",
            {"tensor_parallel_size": tp, "pipeline_parallel_size": pp},
        )


_SERVE_FIELDS = {
    "parallelism.tp": "serve.tensor_parallel_size",
    "parallelism.pp": "serve.pipeline_parallel_size",
}


def _check_model_fit(recipe: Recipe, facts: ModelFacts) -> Iterator[Problem]:
    """Serving layout vs the model: the quantize driver's shape rules at the serve TP/PP (heads, sizes,
    layers, AWQ blocks), and max_seq_len vs the model's positions."""
    from trtbuild.quantize.shapes import check_shapes, errors_only

    tp, pp = serve_world(recipe)
    q = recipe.quantization
    for p in errors_only(check_shapes(facts.raw, q.qformat, max(tp, 1), max(pp, 1), q.awq_block_size)):
        fix = p.fix
        for old, new in _SERVE_FIELDS.items():
            fix = fix.replace(old, new)
        yield Problem(_SERVE_FIELDS.get(p.field, p.field), f"{p.message} ({facts.source})", fix, p.value)
    limit, seq = facts.max_seq_len_limit, recipe.serve.get("max_seq_len")
    if limit is not None and isinstance(seq, int) and seq > limit:
        yield Problem(
            "serve.max_seq_len",
            f"beyond the model's max_position_embeddings × rope factor = {limit}",
            f"use serve.max_seq_len ≤ {limit}",
            seq,
        )

"""Triton model repository for the TensorRT-LLM inflight batcher: preprocessing -> tensorrt_llm ->
postprocessing, wired by the ensemble.

The config.pbtxt files come from the backend's own templates (all_models/inflight_batcher_llm), filled
with values derived from the engine. Parameter names are those of the templates and of
tools/fill_template.py usage in triton-inference-server/tensorrtllm_backend and of
NVIDIA/TensorRT-LLM triton_backend/all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt
@2a9abd9536aa62ad3e4b9314be9286b1b1be523b; how the backend reads them (required: gpt_model_type,
tokenizer_dir, guided_decoding_backend, xgrammar_tokenizer_info_path; the rest optional with defaults) is
from triton_backend/inflight_batcher_llm/src/model_instance_state.cc
@0c8de69a1ca6213eebb20a51873890ff128666c2.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from trtbuild.bake import triton_params
from trtbuild.bake.engine import EngineInfo, check_runtime_limit
from trtbuild.errors import InputError

MODELS = ("preprocessing", "tensorrt_llm", "postprocessing", "ensemble")
# Keys trtbuild derives from the engine; --triton-param may not override them.
ENGINE_DERIVED = frozenset(
    {"triton_max_batch_size", "max_beam_width", "engine_dir", "tokenizer_dir", "triton_backend"}
)
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FILL_SCRIPT = Path(__file__).with_name("fill_model_repo.py")


@dataclass
class TritonOptions:
    """Runtime settings of the Triton model repository (engine-fixed limits default to the engine's)."""

    triton_max_batch_size: int | None = None
    max_beam_width: int | None = None
    decoupled: bool = True
    batching_strategy: str = "inflight_fused_batching"
    kv_cache_free_gpu_mem_fraction: float = 0.9
    batch_scheduler_policy: str = "guaranteed_no_evict"
    exclude_input_in_output: bool = True
    max_queue_delay_microseconds: int = 0
    max_queue_size: int = 0
    instance_count: int = 1
    extra: dict[str, str] = field(default_factory=dict)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def check_fraction(value: float, flag: str) -> float:
    if not 0.0 < value <= 1.0:
        raise InputError(f"{flag} must be in (0, 1] (got {value})", hint=f"e.g. {flag} 0.9")
    return value


# dedicated bake options and the template parameter each one fills (for messages)
OPTION_OF_PARAM = {
    "batching_strategy": "--batching-strategy",
    "batch_scheduler_policy": "--batch-scheduler-policy",
    "kv_cache_free_gpu_mem_fraction": "--kv-cache-free-gpu-mem-fraction",
    "decoupled_mode": "--decoupled/--no-decoupled",
    "exclude_input_in_output": "exclude_input_in_output",
    "max_queue_delay_microseconds": "max_queue_delay_microseconds",
    "max_queue_size": "max_queue_size",
    "preprocessing_instance_count": "--instance-count",
    "postprocessing_instance_count": "--instance-count",
}


def substitutions(
    info: EngineInfo, opts: TritonOptions, *, engine_path: str, tokenizer_path: str
) -> dict[str, str]:
    """Every ``${name}`` value for the four configs, validated against what the engine was built for and
    against what the backend accepts (``triton_params``): dedicated options and ``--triton-param`` alike."""
    batch = check_runtime_limit(info, "max_batch_size", opts.triton_max_batch_size)
    beam = check_runtime_limit(info, "max_beam_width", opts.max_beam_width)
    values = {
        "triton_backend": "tensorrtllm",
        "triton_max_batch_size": str(batch),
        "max_beam_width": str(beam),
        "decoupled_mode": _bool(opts.decoupled),
        "batching_strategy": opts.batching_strategy,
        "engine_dir": engine_path,
        "tokenizer_dir": tokenizer_path,
        "kv_cache_free_gpu_mem_fraction": str(opts.kv_cache_free_gpu_mem_fraction),
        "batch_scheduler_policy": opts.batch_scheduler_policy,
        "exclude_input_in_output": _bool(opts.exclude_input_in_output),
        "max_queue_delay_microseconds": str(opts.max_queue_delay_microseconds),
        "max_queue_size": str(opts.max_queue_size),
        "preprocessing_instance_count": str(opts.instance_count),
        "postprocessing_instance_count": str(opts.instance_count),
        # Tensor data types the templates leave open; these are the upstream examples' choices.
        "logits_datatype": "TYPE_FP32",
        "encoder_input_features_data_type": "TYPE_FP16",
        "prompt_embedding_table_data_type": "TYPE_FP16",
    }
    for name, value in opts.extra.items():
        if not PARAM_NAME.match(name):
            raise InputError(
                f"--triton-param {name}={value}: not a template parameter name",
                hint="names are letters, digits and _ (as in ${name} of config.pbtxt)",
            )
        if name in ENGINE_DERIVED:
            raise InputError(
                f"--triton-param {name}: trtbuild sets it from the engine",
                hint="use --max-batch-size / --max-beam-width, which are checked against the engine",
            )
        typo = triton_params.near_miss(name)
        if typo is not None:
            raise InputError(
                f"--triton-param {name}: not a parameter of the inflight_batcher_llm templates "
                "(the backend would ignore it)",
                hint=f"did you mean {typo}?",
            )
        if any(c in value for c in '"\n\r\\'):
            raise InputError(
                f"--triton-param {name}: the value may not contain quotes, backslashes or newlines",
                hint="pass a plain value",
            )
        values[name] = value
    for name, value in values.items():
        problem = triton_params.check_value(name, value)
        if problem is None:
            continue
        given = f"--triton-param {name}" if name in opts.extra else OPTION_OF_PARAM.get(name, name)
        raise InputError(
            f"{given}: {problem} (template parameter ${{{name}}}; the backend would refuse to load the "
            "model or silently use its default)",
            hint=f"give {name} a value the TensorRT-LLM backend accepts",
        )
    return values


def write_fill_inputs(dest: Path, values: dict[str, str]) -> Path:
    """``dest/values.json`` + the fill script, for filling inside the image at build time."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "values.json"
    path.write_text(
        json.dumps({"models": list(MODELS), "substitutions": values}, indent=2, sort_keys=True) + "\n",
        "utf-8",
    )
    shutil.copy2(FILL_SCRIPT, dest / FILL_SCRIPT.name)
    return path


def fill_locally(templates: Path, values: dict[str, str], out: Path) -> list[Path]:
    """Fill the model repository now, from a local copy of the backend templates."""
    from trtbuild.bake.fill_model_repo import FillError, fill

    try:
        return fill(Path(templates), {"models": list(MODELS), "substitutions": values}, out)
    except FillError as exc:
        raise InputError(
            str(exc),
            hint="pass --triton-templates with all_models/inflight_batcher_llm of the "
            "backend release that matches the base image",
        ) from None

"""The values the TensorRT-LLM Triton backend accepts for each template parameter of inflight_batcher_llm.

Every ``${name}`` value trtbuild writes, from a dedicated ``bake`` option or from ``--triton-param``, is
checked here the same way, so a value the backend would reject (the model fails to load) or silently replace
with its default never reaches an image (tensorrtllm_backend sources cited below):

- the backend reads each ``parameters`` value with ``GetParameter<T>`` (model_instance_state.cc @0c8de69a,
  model_state.cc @5cdd6921): ``gpt_model_type`` (template ``${batching_strategy}``) must be V1, v1,
  inflight_batching or inflight_fused_batching; booleans must be True/true/TRUE/1/False/false/FALSE/0;
  ``batch_scheduler_policy`` max_utilization or guaranteed_no_evict; ``decoding_mode`` one of its eight
  modes; integers and floats must parse;
- ``${decoupled_mode}`` is a protobuf bool and the ``*_datatype`` placeholders are model_config.proto
  DataType names, parsed by Triton itself.

Names: the placeholders of the templates' config.pbtxt files (tensorrt_llm/config.pbtxt @0c8de69a and the
pre/post-processing and ensemble models). A name not listed here is accepted with a plain value only (newer
templates may add placeholders), unless it is a near-miss of a listed one (a typo the backend would ignore).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

BACKEND_BOOLS = ("True", "true", "TRUE", "1", "False", "false", "FALSE", "0")
PROTOBUF_BOOLS = (
    "true",
    "True",
    "1",
    "false",
    "False",
    "0",
)  # accepted by both protobuf text and the backend
BATCHING_STRATEGIES = ("inflight_fused_batching", "inflight_batching", "V1", "v1")
SCHEDULER_POLICIES = ("guaranteed_no_evict", "max_utilization")
DECODING_MODES = ("top_k", "top_p", "top_k_top_p", "beam_search", "medusa", "redrafter", "lookahead", "eagle")
GUIDED_DECODING_BACKENDS = ("xgrammar",)
# model_config.proto DataType names the templates' logits / embedding placeholders take
TENSOR_TYPES = ("TYPE_FP32", "TYPE_FP16", "TYPE_BF16")
_INT = re.compile(r"^[+-]?\d+$")
_INT_LIST = re.compile(r"^\d+(,\d+)*$")

Check = Callable[[str], str | None]


def _choice(options: tuple[str, ...]) -> Check:
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


def _int(minimum: int | None = None) -> Check:
    def check(v: str) -> str | None:
        if not _INT.match(v):
            return "must be an integer"
        if minimum is not None and int(v) < minimum:
            return f"must be >= {minimum}"
        return None

    return check


def _float(low: float | None = None, high: float | None = None, low_open: bool = False) -> Check:
    def check(v: str) -> str | None:
        try:
            x = float(v)
        except ValueError:
            return "must be a number"
        if (
            x != x
            or (low is not None and (x < low or (low_open and x == low)))
            or (high is not None and x > high)
        ):
            return f"must be in {'(' if low_open else '['}{low}, {high}]"
        return None

    return check


def _int_list(v: str) -> str | None:
    return None if _INT_LIST.match(v) else "must be integers separated by commas (e.g. 4096,4096)"


def _text(v: str) -> str | None:
    return None if v.strip() else "must not be empty"


_BOOL = _choice(BACKEND_BOOLS)
_FRACTION = _float(0.0, 1.0, low_open=True)

# placeholder -> check of its value (what the backend / Triton accepts)
PARAMETERS: dict[str, Check] = {
    # tensorrt_llm model: parameters read by the backend
    "batching_strategy": _choice(BATCHING_STRATEGIES),
    "batch_scheduler_policy": _choice(SCHEDULER_POLICIES),
    "decoding_mode": _choice(DECODING_MODES),
    "guided_decoding_backend": _choice(GUIDED_DECODING_BACKENDS),
    "kv_cache_free_gpu_mem_fraction": _FRACTION,
    "cross_kv_cache_fraction": _FRACTION,
    "lora_cache_gpu_memory_fraction": _FRACTION,
    "gpu_weights_percent": _float(0.0, 1.0),
    "max_tokens_in_paged_kv_cache": _int(1),
    "max_attention_window_size": _int_list,
    "sink_token_length": _int(0),
    "kv_cache_host_memory_bytes": _int(0),
    "lora_cache_host_memory_bytes": _int(0),
    "cancellation_check_period_ms": _int(0),
    "stats_check_period_ms": _int(0),
    "iter_stats_max_iterations": _int(0),
    "request_stats_max_iterations": _int(0),
    "num_nodes": _int(1),
    "lora_cache_optimal_adapter_size": _int(1),
    "lora_cache_max_adapter_size": _int(1),
    "lookahead_window_size": _int(1),
    "lookahead_ngram_size": _int(1),
    "lookahead_verification_set_size": _int(1),
    "cuda_graph_cache_size": _int(0),
    "kv_cache_onboard_blocks": _BOOL,
    "enable_trt_overlap": _BOOL,
    "exclude_input_in_output": _BOOL,
    "enable_kv_cache_reuse": _BOOL,
    "normalize_log_probs": _BOOL,
    "enable_chunked_context": _BOOL,
    "enable_context_fmha_fp32_acc": _BOOL,
    "multi_block_mode": _BOOL,
    "cuda_graph_mode": _BOOL,
    "speculative_decoding_fast_logits": _BOOL,
    "gpu_device_ids": _text,
    "participant_ids": _text,
    "lora_prefetch_dir": _text,
    "medusa_choices": _text,
    "eagle_choices": _text,
    "encoder_engine_dir": _text,
    "xgrammar_tokenizer_info_path": _text,
    # config.pbtxt fields Triton parses itself
    "decoupled_mode": _choice(PROTOBUF_BOOLS),
    "triton_max_batch_size": _int(1),
    "max_beam_width": _int(1),
    "max_queue_delay_microseconds": _int(0),
    "max_queue_size": _int(0),
    "preprocessing_instance_count": _int(1),
    "postprocessing_instance_count": _int(1),
    "logits_datatype": _choice(TENSOR_TYPES),
    "encoder_input_features_data_type": _choice(TENSOR_TYPES),
    "prompt_embedding_table_data_type": _choice(TENSOR_TYPES),
    # pre/post-processing Python models
    "add_special_tokens": _BOOL,
    "skip_special_tokens": _BOOL,
    "tokenizer_dir": _text,
    "engine_dir": _text,
    "triton_backend": _choice(("tensorrtllm",)),
}


def check_value(name: str, value: str) -> str | None:
    """What is wrong with ``value`` for template parameter ``name`` (None: the backend accepts it)."""
    check = PARAMETERS.get(name)
    if check is None:
        return None
    problem = check(value)
    return f"{value!r} {problem}" if problem else None


def near_miss(name: str) -> str | None:
    """A listed parameter that ``name`` (not listed) is a likely typo of."""
    if name in PARAMETERS:
        return None
    close = difflib.get_close_matches(name, list(PARAMETERS), n=1, cutoff=0.85)
    return close[0] if close else None

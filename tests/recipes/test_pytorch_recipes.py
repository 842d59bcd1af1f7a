"""backend = "pytorch" recipes: backend defaulting, the [serve] table checked against the recorded
TorchLlmArgs,
the formats the PyTorch backend serves, and the refusals (with their reasons)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

from tests.recipes.helpers import DELETE, recipe_dict
from trtbuild.errors import RecipeError
from trtbuild.recipe import llmapi_spec
from trtbuild.recipe.load import load_recipe
from trtbuild.recipe.toolchain import load_toolchains

REPO = Path(__file__).resolve().parents[2]
PYTORCH = {
    "parallelism": DELETE,
    "limits": DELETE,
    "build": DELETE,
    "target.toolchain": "trtllm-1.3.0rc26",
    "serve": {
        "tensor_parallel_size": 2,
        "max_batch_size": 64,
        "kv_cache_config": {"free_gpu_memory_fraction": 0.8},
    },
}


def _write(tmp_path: Path, changes: dict) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(tomli_w.dumps(recipe_dict(changes)))
    return path


def _problems(tmp_path: Path, changes: dict) -> dict[str, str]:
    with pytest.raises(RecipeError) as exc:
        load_recipe(_write(tmp_path, changes))
    return {i.field: f"{i.message} | {i.fix}" for i in exc.value.issues}


def test_the_pytorch_example_recipe_validates():
    loaded = load_recipe(REPO / "recipes" / "llama3-8b-fp8-pytorch.toml")
    assert loaded.backend == "pytorch" and loaded.toolchain.llm_api_spec


def test_backend_defaults_to_the_toolchain(tmp_path):
    assert load_recipe(_write(tmp_path, {**PYTORCH, "target.backend": DELETE})).backend == "pytorch"
    assert load_recipe(_write(tmp_path, {})).backend == "engine"  # 1.1.0 has trtllm-build


def test_engine_recipe_pinned_past_rc20_is_refused_with_a_pointer_to_pytorch(tmp_path):
    problems = _problems(tmp_path, {"target.toolchain": "trtllm-1.3.0rc26", "target.backend": "engine"})
    assert "no trtllm-build" in problems["target.backend"]
    assert 'backend = "pytorch"' in problems["target.backend"]


def test_pytorch_on_a_toolchain_older_than_1_2_is_refused(tmp_path):
    problems = _problems(
        tmp_path, {**PYTORCH, "target.toolchain": "trtllm-1.1.0", "target.backend": "pytorch"}
    )
    assert "predates the PyTorch-backend" in problems["target.backend"]


def test_int8_sq_and_int8_kv_are_refused_for_pytorch_with_the_reason(tmp_path):
    problems = _problems(
        tmp_path, {**PYTORCH, "quantization.format": "int8_sq", "quantization.kv_cache": "int8"}
    )
    assert "SmoothQuant exists only on the engine path" in problems["quantization.format"]
    assert "FP8 KV cache, not INT8" in problems["quantization.kv_cache"]


def test_engine_tables_are_refused_with_the_serve_key_that_replaces_them(tmp_path):
    changes = {**PYTORCH, "parallelism": {"tp": 2}, "limits": {"max_batch_size": 8}}
    problems = _problems(tmp_path, changes)
    assert "serve.tensor_parallel_size" in problems["parallelism"]
    assert "serve.max_batch_size" in problems["limits"]


def test_serve_on_an_engine_recipe_is_refused(tmp_path):
    assert "backend" in _problems(tmp_path, {"serve": {"max_batch_size": 8}})["serve"]


@pytest.mark.parametrize(
    "serve, field, words",
    [
        ({"max_batch_sise": 8}, "serve.max_batch_sise", "did you mean 'max_batch_size'"),
        ({"kv_cache_config": {"free_gpu_mem": 0.5}}, "serve.kv_cache_config.free_gpu_mem", "did you mean"),
        ({"max_num_tokens": "8192"}, "serve.max_num_tokens", "wrong type"),
        ({"enable_chunked_prefill": 1}, "serve.enable_chunked_prefill", "wrong type"),
        (
            {"kv_cache_config": {"free_gpu_memory_fraction": 1.2}},
            "serve.kv_cache_config.free_gpu_memory_fraction",
            "≤ 1",
        ),
        ({"kv_cache_config": {"dtype": "int8"}}, "serve.kv_cache_config.dtype", "not an allowed value"),
        ({"attn_backend": 3}, "serve.attn_backend", "wrong type"),
        ({"allreduce_strategy": "FAST"}, "serve.allreduce_strategy", "not an allowed value"),
        (
            {"moe_config": {"backend": "CUTLASS"}},
            "serve.moe_config",
            "has not recorded the fields of MoeConfig",
        ),
        ({"model": "/elsewhere"}, "serve.model", "set by trtbuild"),
        ({"sampler_type": "TRTLLMSampler"}, "serve.sampler_type", "removed from TorchLlmArgs"),
        (
            {"cuda_graph_config": {"batch_sizes": [1, 2], "max_batch_size": 4}},
            "serve.cuda_graph_config.max_batch_size",
            "max(batch_sizes)",
        ),
        ({"cuda_graph_config": {"mode": "prefill"}}, "serve.cuda_graph_config.mode", "not an allowed value"),
        (
            {"scheduler_config": {"dynamic_batch_config": {}}},
            "serve.scheduler_config.dynamic_batch_config",
            "TensorRT backend only",
        ),
        ({"tensor_parallel_size": 16}, "serve.tensor_parallel_size", "GPUs per node"),
    ],
)
def test_serve_is_checked_against_the_recorded_field_list(tmp_path, serve, field, words):
    problems = _problems(tmp_path, {**PYTORCH, "serve": serve})
    assert field in problems, problems
    assert words in problems[field]


def test_valid_nested_serve_options_pass(tmp_path):
    serve = {
        "tensor_parallel_size": 1,
        "max_seq_len": 4096,
        "enable_attention_dp": False,
        "kv_cache_config": {
            "dtype": "FP8",
            "max_tokens": 65536,
            "block_reuse_config": {"policy": "per_request"},
        },
        "cuda_graph_config": {"enable_padding": True, "batch_sizes": [1, 2, 4, 8]},
        "scheduler_config": {"capacity_scheduler_policy": "MAX_UTILIZATION"},
        "torch_compile_config": {"enable_fullgraph": True},
        "env_overrides": {"NCCL_DEBUG": "WARN", "X": 1},
    }
    loaded = load_recipe(_write(tmp_path, {**PYTORCH, "serve": serve}))
    assert loaded.recipe.serve["kv_cache_config"]["max_tokens"] == 65536


def test_fp8_below_sm89_is_refused_for_pytorch(tmp_path):
    problems = _problems(tmp_path, {**PYTORCH, "target.gpu_arch": "sm80"})
    assert "FP8 needs sm89" in problems["quantization.format"]


def test_serve_tp_must_fit_the_model_heads(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_hidden_layers": 2,
        "vocab_size": 512,
        "max_position_embeddings": 256,
    }
    (model / "config.json").write_text(json.dumps(cfg))
    changes = {
        **PYTORCH,
        "model": {"source": f"file://{model}"},
        "serve": {"tensor_parallel_size": 3, "max_seq_len": 999},
    }
    problems = _problems(tmp_path, changes)
    assert "not divisible by tp" in problems["serve.tensor_parallel_size"]
    assert "serve.tensor_parallel_size" in problems["serve.tensor_parallel_size"]
    assert "≤ 256" in problems["serve.max_seq_len"]


def test_the_recorded_spec_names_its_commit_and_says_it_is_not_a_proven_tag():
    pins = load_toolchains()
    family = pins["trtllm-1.3.0rc26"].llm_api_spec
    src = llmapi_spec.source(family)
    assert src["commit"] == "0004396720054fd8e205cbf616f21f0b57c6b412"
    assert src["path"] == "tensorrt_llm/llmapi/llm_args.py" and src["proven_release_tag"] is False
    top = llmapi_spec.fields(family)
    for key in (
        "max_batch_size",
        "max_num_tokens",
        "max_seq_len",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "kv_cache_config",
        "cuda_graph_config",
        "enable_chunked_prefill",
        "attn_backend",
        "print_iter_log",
    ):
        assert key in top
    # every table field points at a recorded class or says it is not recorded
    for cls in (c for f in top.values() if f["type"] == "table" for c in [f.get("class")]):
        field = next(f for f in top.values() if f.get("class") == cls)
        assert (
            field.get("recorded") is False
            or cls in ("CudaGraphConfigType",)
            or llmapi_spec.fields(family, cls)
        )

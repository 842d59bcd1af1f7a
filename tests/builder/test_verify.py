"""The verify step follows the real builder: engines whose config.json carries the limits and switches
trtllm-build normalises pass; a mismatch in any checked field is refused, naming the field.

Table-driven over real-shaped engine config.json files (fixtures/engine_config_llama3_8b.json: the layout
and fields TensorRT-LLM writes, tensorrt_llm/builder.py Engine.save). The saved values in each case are
written out by hand from the builder's rules (conformance.md), not computed by trtbuild.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.conftest import RECIPES
from tests.recipes.helpers import DELETE, recipe_dict
from trtbuild.build.verify import VerifyFailed, expectations, verify_engine
from trtbuild.recipe.schema import Recipe
from trtbuild.recipe.toolchain import load_toolchains

BASE_CONFIG = json.loads((Path(__file__).parent / "fixtures" / "engine_config_llama3_8b.json").read_text())
TOOLCHAINS = load_toolchains(RECIPES / "toolchains.toml")
# the helpers' base recipe (Llama 3 8B, FP8 + FP8 KV, tp 1, batch 8, input 1024, seq 2048), on 1.2.1
BASE = {"target.toolchain": "trtllm-1.2.1", "model.architecture": "LlamaForCausalLM"}
PC = "build_config.plugin_config"

# (id, recipe changes, engine config changes: what trtllm-build 1.2.1 saves for that recipe)
ACCEPTED = [
    ("as-built", {}, {}),
    (
        "batch-1-default-max-num-tokens",
        {"limits.max_batch_size": 1, "limits.max_input_len": 2048, "limits.max_seq_len": 4096},
        {
            "build_config.max_batch_size": 1,
            "build_config.max_input_len": 2048,
            "build_config.max_seq_len": 4096,
            "build_config.max_num_tokens": 4096,  # 8192 (default) > 1 × 4096
            "build_config.opt_num_tokens": 1,
        },
    ),
    (
        "remove-input-padding-off",
        {"build.remove_input_padding": False, "limits.max_num_tokens": 4096},
        {
            f"{PC}.remove_input_padding": False,
            "build_config.max_num_tokens": 16384,  # max_batch_size × max_seq_len, whatever was asked
            "build_config.opt_num_tokens": None,
        },
    ),
    (
        "context-fmha-off-max-num-tokens-below-input",
        {"build.context_fmha": False, "limits.max_num_tokens": 512},
        {
            f"{PC}.context_fmha": False,
            f"{PC}.use_paged_context_fmha": False,
            f"{PC}.use_fp8_context_fmha": False,
            "build_config.max_num_tokens": 1024,  # raised to max_input_len
            "build_config.opt_num_tokens": 8,
        },
    ),
    (
        "max-input-above-deduced-max-seq-len",
        {"limits.max_seq_len": DELETE, "limits.max_input_len": 16384},
        {
            "build_config.max_seq_len": 8192,  # max_position_embeddings
            "build_config.max_input_len": 8192,  # clipped
        },
    ),
    (
        "deduced-max-seq-len-with-linear-rope",
        {"limits.max_seq_len": DELETE},
        {
            "pretrained_config.rotary_scaling": {"type": "linear", "factor": 2.0},
            "build_config.max_seq_len": 16384,
        },
    ),
    (
        "deduced-max-seq-len-llama3-rope-factor-ignored",
        {"limits.max_seq_len": DELETE},
        {
            "pretrained_config.rotary_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192,
            },
            "build_config.max_seq_len": 8192,
        },
    ),
    (
        "max-num-tokens-raised-to-tokens-per-block",
        {"limits.max_num_tokens": 16, "build.tokens_per_block": 64},
        {f"{PC}.tokens_per_block": 64, "build_config.max_num_tokens": 64, "build_config.opt_num_tokens": 8},
    ),
    (
        "max-num-tokens-capped",
        {"limits.max_batch_size": 2, "limits.max_num_tokens": 8192},
        {
            "build_config.max_batch_size": 2,
            "build_config.max_num_tokens": 4096,
            "build_config.opt_num_tokens": 2,
        },
    ),
    (
        "multiple-profiles-leave-opt-num-tokens-unset",
        {"build.multiple_profiles": True},
        {f"{PC}.multiple_profiles": True, "build_config.opt_num_tokens": None},
    ),
    (
        "int4-awq-with-fp8-kv-turns-fp8-and-paged-fmha-off",
        {"quantization.format": "int4_awq"},
        {
            "pretrained_config.quantization.quant_algo": "W4A16_AWQ",
            f"{PC}.use_fp8_context_fmha": False,
            f"{PC}.use_paged_context_fmha": False,
        },
    ),
    (
        "fp8-without-fp8-kv-turns-fp8-fmha-off",
        {"quantization.kv_cache": "none"},
        {"pretrained_config.quantization.kv_cache_quant_algo": None, f"{PC}.use_fp8_context_fmha": False},
    ),
    (
        "int8-kv-turns-paged-fmha-off",
        {"quantization.format": "int8_sq", "quantization.kv_cache": "int8"},
        {
            "pretrained_config.quantization.quant_algo": "W8A8_SQ_PER_CHANNEL",
            "pretrained_config.quantization.kv_cache_quant_algo": "INT8",
            f"{PC}.use_fp8_context_fmha": False,
            f"{PC}.use_paged_context_fmha": False,
        },
    ),
    ("gemm-plugin-auto-saved-resolved", {}, {f"{PC}.gemm_plugin": "bfloat16"}),
    (
        "reduce-fusion-kept-at-tp2-for-llama",
        {"parallelism.tp": 2, "build.reduce_fusion": True, "build.user_buffer": True},
        {
            "pretrained_config.mapping.tp_size": 2,
            "pretrained_config.mapping.world_size": 2,
            f"{PC}.reduce_fusion": True,
            f"{PC}.user_buffer": True,
        },
    ),
    (
        "float32-request-exported-as-float16",  # trtbuild's quantize driver writes float16/bfloat16 only
        {"model.dtype": "float32"},
        {"pretrained_config.dtype": "float16", f"{PC}.dtype": "float16"},
    ),
]

# (id, recipe changes, engine config changes, the field the refusal names)
REJECTED = [
    ("version", {}, {"version": "1.1.0"}, "trtllm version"),
    ("tp", {}, {"pretrained_config.mapping.tp_size": 2}, "mapping.tp_size"),
    ("quant-algo", {}, {"pretrained_config.quantization.quant_algo": "W4A16_AWQ"}, "quantization.quant_algo"),
    ("kv-algo", {}, {"pretrained_config.quantization.kv_cache_quant_algo": None}, "kv_cache_quant_algo"),
    ("dtype", {}, {"pretrained_config.dtype": "float16"}, "pretrained_config.dtype"),
    (
        "architecture",
        {},
        {"pretrained_config.architecture": "GPTForCausalLM"},
        "pretrained_config.architecture",
    ),
    ("kv-cache-type", {}, {"build_config.kv_cache_type": "CONTINUOUS"}, "build_config.kv_cache_type"),
    ("max-batch-size", {}, {"build_config.max_batch_size": 16}, "build_config.max_batch_size"),
    ("max-input-len", {}, {"build_config.max_input_len": 512}, "build_config.max_input_len"),
    ("max-seq-len", {}, {"build_config.max_seq_len": 4096}, "build_config.max_seq_len"),
    ("max-beam-width", {}, {"build_config.max_beam_width": 4}, "build_config.max_beam_width"),
    (
        "max-num-tokens-as-requested-not-as-normalised",
        {"limits.max_batch_size": 1, "limits.max_seq_len": 4096},
        {
            "build_config.max_batch_size": 1,
            "build_config.max_seq_len": 4096,
            "build_config.opt_num_tokens": 1,
        },
        "build_config.max_num_tokens",
    ),
    ("opt-num-tokens", {}, {"build_config.opt_num_tokens": 64}, "build_config.opt_num_tokens"),
    ("context-fmha", {}, {f"{PC}.context_fmha": False}, f"{PC}.context_fmha"),
    ("remove-input-padding", {}, {f"{PC}.remove_input_padding": False}, f"{PC}.remove_input_padding"),
    ("tokens-per-block", {}, {f"{PC}.tokens_per_block": 64}, f"{PC}.tokens_per_block"),
    ("paged-context-fmha", {}, {f"{PC}.use_paged_context_fmha": False}, f"{PC}.use_paged_context_fmha"),
    ("fp8-context-fmha", {}, {f"{PC}.use_fp8_context_fmha": False}, f"{PC}.use_fp8_context_fmha"),
    ("multiple-profiles", {}, {f"{PC}.multiple_profiles": True}, f"{PC}.multiple_profiles"),
    ("reduce-fusion", {}, {f"{PC}.reduce_fusion": True}, f"{PC}.reduce_fusion"),
    ("gemm-plugin", {}, {f"{PC}.gemm_plugin": "float16"}, f"{PC}.gemm_plugin"),
    ("disabled-gemm-plugin", {"build.gemm_plugin": "disable"}, {}, f"{PC}.gemm_plugin"),
    ("strip-plan", {"build.strip_plan": True}, {}, "build_config.use_strip_plan"),
]


def _expect(changes: dict) -> dict:
    recipe = Recipe.model_validate(recipe_dict({**BASE, **changes}))
    return expectations(recipe, TOOLCHAINS[recipe.target.toolchain], None, quantized=True)


def _engine(tmp_path: Path, changes: dict) -> Path:
    config = copy.deepcopy(BASE_CONFIG)
    for dotted, value in changes.items():
        node = config
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    d = tmp_path / "engine"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config, indent=4))
    for rank in range(config["pretrained_config"]["mapping"]["world_size"]):
        (d / f"rank{rank}.engine").write_bytes(b"plan" * 8)
    return d


@pytest.mark.parametrize("case_id,recipe,engine", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_engines_as_trtllm_build_saves_them_pass(tmp_path, case_id, recipe, engine):
    report = verify_engine(_engine(tmp_path, engine), _expect(recipe))
    assert report.ok and len(report.checks) >= 25


@pytest.mark.parametrize("case_id,recipe,engine,field", REJECTED, ids=[c[0] for c in REJECTED])
def test_a_mismatch_is_refused_naming_the_field(tmp_path, case_id, recipe, engine, field):
    with pytest.raises(VerifyFailed) as err:
        verify_engine(_engine(tmp_path, engine), _expect(recipe))
    message = str(err.value).splitlines()[0]
    failed = [
        part.split(":")[0] for part in message.split(": engine does not match the recipe: ")[1].split("; ")
    ]
    # the named field fails first; a wrong quantization also changes the switches the builder saves
    assert field in failed[0], str(err.value)
    assert len(failed) == 1 or case_id in ("quant-algo", "kv-algo"), str(err.value)
    assert "was not published" in err.value.hint


def test_missing_or_empty_rank_is_refused(tmp_path):
    d = _engine(tmp_path, {})
    (d / "rank0.engine").write_bytes(b"")
    with pytest.raises(VerifyFailed, match="non-empty"):
        verify_engine(d, _expect({}))
    (d / "rank0.engine").unlink()
    with pytest.raises(VerifyFailed, match="rank engines"):
        verify_engine(d, _expect({}))


def test_missing_config_is_refused(tmp_path):
    d = _engine(tmp_path, {})
    (d / "config.json").unlink()
    with pytest.raises(VerifyFailed, match="missing or not JSON"):
        verify_engine(d, _expect({}))


def test_unknown_dtype_and_architecture_are_not_guessed():
    """Without the model's config.json, an "auto" dtype and an unnamed architecture are not checked."""
    expect = _expect({"model.dtype": "auto", "model.architecture": DELETE})
    assert expect["dtype"] is None and expect["architecture"] is None

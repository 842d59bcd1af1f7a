"""Table-driven: every bad recipe gets an error naming the file, the field, and the fix; exit code 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.conftest import LLAMA8B_CONFIG
from tests.recipes.helpers import DELETE, write_recipe
from trtbuild.cli import cli
from trtbuild.errors import RecipeError
from trtbuild.recipe.load import load_recipe

LOCAL = "file://{model}"  # replaced by a dir holding a Llama-3-8B config.json
LOCAL2 = "file://{model2}"  # Llama-2-7B-like shapes with 12 KV heads

# (id, changes, expected field, text in the message, text in the fix)
CASES = [
    ("unknown-top-key", {"nmae": "x"}, "nmae", "unknown key", "did you mean 'name'"),
    (
        "unknown-model-key",
        {"model.revison": "main"},
        "model.revison",
        "unknown key",
        "did you mean 'revision'",
    ),
    ("unknown-table", {"limit.max_batch_size": 4}, "limit", "unknown key", "did you mean 'limits'"),
    (
        "unknown-build-switch",
        {"build.use_paged_contxt_fmha": True},
        "build.use_paged_contxt_fmha",
        "unknown key",
        "did you mean 'use_paged_context_fmha'",
    ),
    ("missing-name", {"name": DELETE}, "name", "required key is missing", "add `name = ...`"),
    ("missing-source", {"model.source": DELETE}, "model.source", "required key is missing", "add `source"),
    ("missing-toolchain", {"target.toolchain": DELETE}, "target.toolchain", "required", "add `toolchain"),
    ("bad-name", {"name": "Llama 3!"}, "name", "lowercase", "change it"),
    ("int-as-string", {"limits.max_batch_size": "8"}, "limits.max_batch_size", "wrong type", "integer"),
    (
        "bool-as-string",
        {"build.use_paged_context_fmha": "yes"},
        "build.use_paged_context_fmha",
        "wrong type",
        "true or false",
    ),
    ("float-as-int-field", {"parallelism.tp": 2.0}, "parallelism.tp", "wrong type", "integer"),
    ("tp-zero", {"parallelism.tp": 0}, "parallelism.tp", "must be ≥ 1", "use a value ≥ 1"),
    (
        "bad-format",
        {"quantization.format": "fp4"},
        "quantization.format",
        "not an allowed value",
        "'int4_awq'",
    ),
    ("bad-kv", {"quantization.kv_cache": "fp16"}, "quantization.kv_cache", "not an allowed value", "'int8'"),
    (
        "gpu-memory-zero",
        {"quantization.max_gpu_memory_gib": 0},
        "quantization.max_gpu_memory_gib",
        "must be > 0",
        "> 0",
    ),
    ("bad-dtype", {"model.dtype": "fp16"}, "model.dtype", "not an allowed value", "'float16'"),
    (
        "bad-scheme",
        {"model.source": "https://huggingface.co/x/y"},
        "model.source",
        "hf://, file:// or s3://",
        "change it",
    ),
    ("relative-file", {"model.source": "file://models/x"}, "model.source", "absolute path", "change it"),
    ("bad-hf-repo", {"model.source": "hf://justaname"}, "model.source", "hf://ORG/REPO", "change it"),
    ("bad-arch", {"target.gpu_arch": "hopper"}, "target.gpu_arch", "sm90", "change it"),
    ("tpxpp-over-8", {"parallelism.tp": 8, "parallelism.pp": 2}, "parallelism", "16 GPUs", "tp × pp ≤ 8"),
    (
        "input-over-seq",
        {"limits.max_input_len": 4096, "limits.max_seq_len": 2048},
        "limits.max_input_len",
        "larger than limits.max_seq_len",
        "lower limits.max_input_len",
    ),
    (
        "unknown-toolchain",
        {"target.toolchain": "trtllm1.1.0"},
        "target.toolchain",
        "not a pinned toolchain",
        "did you mean 'trtllm-1.1.0'",
    ),
    (
        "toolchain-arch",
        {"target.gpu_arch": "sm100", "quantization.format": "none", "quantization.kv_cache": "none"},
        "target.gpu_arch",
        "does not support",
        "sm90",
    ),
    ("fp8-on-ampere", {"target.gpu_arch": "sm80"}, "quantization.format", "FP8 needs sm89", "drop FP8"),
    (
        "fp8-kv-on-ampere",
        {"target.gpu_arch": "sm80", "quantization.format": "int8_sq"},
        "quantization.kv_cache",
        "FP8 needs sm89",
        "FP8-capable",
    ),
    (
        "fp8-weights-int8-kv",
        {"quantization.kv_cache": "int8"},
        "quantization.kv_cache",
        "INT8 KV cache with FP8 weights",
        'kv_cache = "fp8"',
    ),
    (
        "kv-quant-no-cache",
        {"build.kv_cache_type": "disabled"},
        "quantization.kv_cache",
        "needs a KV cache",
        'kv_cache_type = "paged"',
    ),
    (
        "fp8-fmha-without-fp8",
        {
            "quantization.format": "int8_sq",
            "quantization.kv_cache": "int8",
            "build.use_fp8_context_fmha": True,
        },
        "build.use_fp8_context_fmha",
        "ignores use_fp8_context_fmha = true here: FP8 context FMHA needs FP8 weights",
        "remove build.use_fp8_context_fmha",
    ),
    (
        "fp8-fmha-with-only-fp8-kv",
        {"quantization.format": "int4_awq", "build.use_fp8_context_fmha": True},
        "build.use_fp8_context_fmha",
        "an FP8 KV cache alone does not enable it",
        "remove build.use_fp8_context_fmha",
    ),
    (
        "fp8-fmha-fp8-weights-without-fp8-kv",
        {"quantization.kv_cache": "none", "build.use_fp8_context_fmha": True},
        "build.use_fp8_context_fmha",
        "FP8 context FMHA with paged context FMHA needs an FP8 KV cache",
        "remove build.use_fp8_context_fmha",
    ),
    (
        "fp8-fmha-off-but-forced-on",
        {"build.use_fp8_context_fmha": False},
        "build.use_fp8_context_fmha",
        "paged context FMHA with an FP8 KV cache turns FP8 context FMHA on",
        "remove build.use_fp8_context_fmha",
    ),
    (
        "paged-fmha-without-context-fmha",
        {"build.context_fmha": False, "build.use_paged_context_fmha": True},
        "build.use_paged_context_fmha",
        "context FMHA is off",
        "remove build.use_paged_context_fmha",
    ),
    (
        "paged-fmha-with-fp8-kv-not-fp8-weights",
        {"quantization.format": "int4_awq", "build.use_paged_context_fmha": True},
        "build.use_paged_context_fmha",
        "paged context FMHA with an FP8 KV cache needs FP8 context FMHA",
        "remove build.use_paged_context_fmha",
    ),
    (
        "paged-fmha-with-int8-kv",
        {
            "quantization.format": "int8_sq",
            "quantization.kv_cache": "int8",
            "build.use_paged_context_fmha": True,
        },
        "build.use_paged_context_fmha",
        "does not work with an INT8 KV cache",
        "remove build.use_paged_context_fmha",
    ),
    (
        "fused-mlp-with-smoothquant",
        {"quantization.format": "int8_sq", "quantization.kv_cache": "int8", "build.use_fused_mlp": True},
        "build.use_fused_mlp",
        "not built for W8A8_SQ_PER_CHANNEL checkpoints",
        "remove build.use_fused_mlp",
    ),
    (
        "fused-mlp-with-awq",
        {"quantization.format": "int4_awq", "quantization.kv_cache": "none", "build.use_fused_mlp": True},
        "build.use_fused_mlp",
        "not built for W4A16_AWQ checkpoints",
        "remove build.use_fused_mlp",
    ),
    (
        "reduce-fusion-at-tp1",
        {"build.reduce_fusion": True},
        "build.reduce_fusion",
        "tp is 1",
        "remove build.reduce_fusion",
    ),
    (
        "reduce-fusion-not-llama",
        {"build.reduce_fusion": True, "parallelism.tp": 2, "model.architecture": "MistralForCausalLM"},
        "build.reduce_fusion",
        "reduce fusion exists only for",
        "remove build.reduce_fusion",
    ),
    (
        "user-buffer-without-reduce-fusion",
        {"build.user_buffer": True, "parallelism.tp": 2},
        "build.user_buffer",
        "only together with reduce fusion",
        "remove build.user_buffer",
    ),
    (
        "norm-quant-fusion-not-nvfp4",
        {"build.norm_quant_fusion": True},
        "build.norm_quant_fusion",
        "only for NVFP4 Llama",
        "remove build.norm_quant_fusion",
    ),
    (
        "multiple-profiles-with-opt-num-tokens",
        {"build.multiple_profiles": True, "build.opt_num_tokens": 256},
        "build.multiple_profiles",
        "build.multiple_profiles together with build.opt_num_tokens: trtllm-build 1.1.0 refuses this before "
        "building (RuntimeError: multiple_profiles is enabled, while opt_num_tokens is set",
        "drop build.opt_num_tokens",
    ),
    (
        "context-logits-with-draft-tokens",
        {"build.gather_context_logits": True, "build.extra_args": ["--max_draft_len", "4"]},
        "build.gather_context_logits",
        "RuntimeError: Gather context logits is not support with draft len > 0",
        "gather_generation_logits",
    ),
    (
        "all-token-logits-with-draft-tokens",
        {"build.extra_args": ["--gather_all_token_logits", "--max_draft_len", "2"]},
        "build.extra_args",
        "RuntimeError: Gather context logits is not support with draft len > 0",
        "drop the context logits",
    ),
    (
        "fp8-gemm-without-fp8",
        {"quantization.format": "int8_sq", "quantization.kv_cache": "int8", "build.gemm_plugin": "fp8"},
        "build.gemm_plugin",
        "need quantization.format",
        'gemm_plugin = "auto"',
    ),
    (
        "paged-fmha-contiguous",
        {
            "build.kv_cache_type": "continuous",
            "quantization.kv_cache": "none",
            "build.use_paged_context_fmha": True,
        },
        "build.use_paged_context_fmha",
        "needs a paged KV cache",
        "kv_cache_type",
    ),
    (
        "tokens-per-block",
        {"build.tokens_per_block": 48},
        "build.tokens_per_block",
        "power of two",
        "change it",
    ),
    (
        "awq-block",
        {
            "quantization.format": "int4_awq",
            "quantization.kv_cache": "none",
            "quantization.awq_block_size": 96,
        },
        "quantization.awq_block_size",
        "not an allowed value",
        "128",
    ),
    (
        "extra-arg-unknown",
        {"build.extra_args": ["--max_batchsize", "4"]},
        "build.extra_args",
        "not a flag of trtllm-build",
        "did you mean",
    ),
    (
        "extra-arg-managed",
        {"build.extra_args": ["--max_batch_size", "4"]},
        "build.extra_args",
        "set by trtbuild",
        "limits.max_batch_size",
    ),
    (
        "extra-arg-managed-switch",
        {"build.extra_args": ["--gemm_plugin", "fp8"]},
        "build.extra_args",
        "set by trtbuild",
        "build.gemm_plugin",
    ),
    (
        "extra-arg-bad-choice",
        {"build.extra_args": ["--log_level", "loud"]},
        "build.extra_args",
        "is not one of",
        "value trtllm-build accepts",
    ),
    (
        "extra-arg-bad-int",
        {"build.extra_args": ["--max_draft_len", "many"]},
        "build.extra_args",
        "not a valid int",
        "value trtllm-build accepts",
    ),
    (
        "extra-arg-removed-by-8329",
        {"target.toolchain": "trtllm-1.3.0rc20", "build.extra_args": ["--auto_parallel", "2"]},
        "build.extra_args",
        "not a flag of trtllm-build 1.3.0rc20",
        "has no such flag",
    ),
    (
        "extra-arg-plugin-field-not-a-flag",
        {"build.extra_args": ["--weight_only_quant_matmul_plugin", "float16"]},
        "build.extra_args",
        "--weight_only_quant_matmul_plugin is not a flag of trtllm-build 1.1.0",
        "has no such flag",
    ),
    (
        "calib-missing-file",
        {"quantization.calibration.dataset": "no-such.jsonl"},
        "quantization.calibration.dataset",
        "file not found",
        '"builtin"',
    ),
    (
        "calib-samples-zero",
        {"quantization.calibration.samples": 0},
        "quantization.calibration.samples",
        "must be ≥ 1",
        "≥ 1",
    ),
    (
        "gate-out-of-range",
        {"quantization.accuracy.min_top1_agreement": 1.5},
        "quantization.accuracy.min_top1_agreement",
        "must be ≤ 1",
        "≤ 1",
    ),
    # rules that need the model's config.json (a local checkpoint dir)
    (
        "heads-vs-tp",
        {"model.source": LOCAL, "parallelism.tp": 3},
        "parallelism.tp",
        "num_attention_heads=32 is not divisible by tp",
        "one of [1, 2, 4, 8]",
    ),
    (
        "heads-vs-tp-convert",
        {
            "model.source": LOCAL,
            "parallelism.tp": 3,
            "quantization.format": "none",
            "quantization.kv_cache": "none",
        },
        "parallelism.tp",
        "32 attention heads",
        "1, 2, 4, 8",
    ),
    (
        "layers-vs-pp",
        {"model.source": LOCAL, "parallelism.pp": 3},
        "parallelism.pp",
        "num_hidden_layers=32 is not divisible by pp",
        "one of [1, 2, 4, 8, 16, 32]",
    ),
    (
        "seq-beyond-positions",
        {"model.source": LOCAL, "limits.max_seq_len": 16384},
        "limits.max_seq_len",
        "max_position_embeddings × rope factor = 8192",
        "≤ 8192",
    ),
    (
        "awq-divisibility",
        {
            "model.source": LOCAL2,
            "quantization.format": "int4_awq",
            "quantization.kv_cache": "none",
            "parallelism.tp": 4,
        },
        "quantization.awq_block_size",
        "intermediate_size (down_proj input)=11008 / tp=4 = 2752",
        "awq_block_size to 64",
    ),
    (
        "kv-heads-vs-tp",
        {"model.source": LOCAL2, "parallelism.tp": 8},
        "parallelism.tp",
        "num_key_value_heads=12 is not divisible by tp",
        "one of [1, 2, 3, 4, 6, 12]",
    ),
    (
        "kv-heads-vs-tp-convert",
        {
            "model.source": LOCAL2,
            "parallelism.tp": 8,
            "quantization.format": "none",
            "quantization.kv_cache": "none",
        },
        "parallelism.tp",
        "12 key/value heads",
        "multiple of it",
    ),
    (
        "arch-mismatch",
        {"model.source": LOCAL, "model.architecture": "MistralForCausalLM"},
        "model.architecture",
        "LlamaForCausalLM",
        'model.architecture = "LlamaForCausalLM"',
    ),
]


def _resolve(changes: dict, model_dir, model2_dir) -> dict:
    return {
        k: (v.format(model=model_dir, model2=model2_dir) if isinstance(v, str) and "{model" in v else v)
        for k, v in changes.items()
    }


@pytest.mark.parametrize("case_id,changes,field,message,fix", CASES, ids=[c[0] for c in CASES])
def test_bad_recipe_is_explained(tmp_path, llama_config_dir, case_id, changes, field, message, fix):
    model2 = tmp_path / "llama2-like"
    model2.mkdir()
    (model2 / "config.json").write_text(
        json.dumps(
            {
                **LLAMA8B_CONFIG,
                "intermediate_size": 11008,
                "num_key_value_heads": 12,
                "num_attention_heads": 48,
                "hidden_size": 6144,
                "max_position_embeddings": 4096,
            }
        )
    )
    path = write_recipe(tmp_path, _resolve(changes, llama_config_dir, model2))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    issues = [i for i in info.value.issues if i.field == field]
    assert issues, f"no issue for {field}; got {[i.field for i in info.value.issues]}"
    text = "\n".join(i.render() for i in issues)
    assert str(path) in text
    assert message in text
    assert fix in text


def test_at_least_thirty_cases():
    assert len(CASES) >= 30


def test_cli_exit_code_two_and_no_traceback(tmp_path):
    path = write_recipe(tmp_path, {"limits.max_batch_size": "8", "nmae": 1})
    result = CliRunner().invoke(cli, ["validate", str(path)], standalone_mode=True)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "limits.max_batch_size" in result.output and "did you mean 'name'" in result.output


def test_main_exit_code_for_invalid_recipe(tmp_path, capfd):
    from trtbuild.cli import main

    path = write_recipe(tmp_path, {"target.toolchain": "nope"})
    with pytest.raises(SystemExit) as info:
        main(["plan", str(path)])
    assert info.value.code == 2
    err = capfd.readouterr().err
    assert "target.toolchain" in err and "Traceback" not in err


def test_syntax_error_names_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = 'x'\n[model\nsource = 1\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert "broken.toml: (syntax): not valid TOML" in str(info.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError) as info:
        load_recipe(tmp_path / "nope.toml")
    assert "recipe not found" in str(info.value)

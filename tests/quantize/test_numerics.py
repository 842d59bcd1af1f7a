"""The numerics check of the exported checkpoint config, and the driver's named version-specific paths.

Table-driven over real-shaped configs: Llama 3 8B's config.json as transformers 4 writes it and as
transformers 5 writes it (rope settings in rope_parameters), and the config.json ModelOpt's TensorRT-LLM
export writes for it.
"""

from __future__ import annotations

import copy

import pytest

from trtbuild.quantize import compat, numerics

LLAMA3_ROPE = {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3",
}
HF4 = {  # Llama 3.1 8B config.json, transformers 4.x layout
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05,
    "rope_scaling": dict(LLAMA3_ROPE),
    "rope_theta": 500000.0,
    "torch_dtype": "bfloat16",
    "vocab_size": 128256,
}
HF5 = {  # the same model saved by transformers 5
    **{k: v for k, v in HF4.items() if k not in ("rope_scaling", "rope_theta", "torch_dtype")},
    "dtype": "bfloat16",
    "rope_parameters": {**LLAMA3_ROPE, "rope_theta": 500000.0},
}
EXPORTED = {  # ModelOpt's TensorRT-LLM checkpoint config.json (manual path) for it
    "producer": {"name": "modelopt", "version": "0.37.0"},
    "architecture": "LlamaForCausalLM",
    "dtype": "bfloat16",
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "hidden_size": 4096,
    "norm_epsilon": 1e-05,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "hidden_act": "silu",
    "head_size": 128,
    "intermediate_size": 14336,
    "position_embedding_type": "rope_gpt_neox",
    "rotary_base": 500000.0,
    "rotary_scaling": dict(LLAMA3_ROPE),
    "mapping": {"world_size": 1, "tp_size": 1, "pp_size": 1},
    "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"},
}


def _changed(base: dict, **changes) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


DROP = object()


@pytest.mark.parametrize("source", [HF4, HF5], ids=["transformers-4", "transformers-5"])
def test_a_faithful_export_passes(source):
    assert numerics.check_numerics(EXPORTED, source, "fp8") == []


# (changed export field, value or DROP, text the problem must carry)
BROKEN = [
    ("rotary_base", DROP, "rotary_base is missing (the source config.json has rope"),
    ("rotary_base", 10000.0, "rotary_base = 10000.0 but the source config.json has rope"),
    ("rotary_scaling", DROP, "rotary_scaling is missing"),
    ("rotary_scaling", {**LLAMA3_ROPE, "factor": 4.0}, "rotary_scaling = "),
    ("rotary_scaling", {"type": "linear", "factor": 8.0}, "rotary_scaling = "),
    ("norm_epsilon", 1e-06, "norm_epsilon = 1e-06 but the source config.json has rms_norm_eps = 1e-05"),
    ("norm_epsilon", DROP, "norm_epsilon is missing"),
    ("num_attention_heads", 64, "num_attention_heads = 64"),
    (
        "num_key_value_heads",
        32,
        "num_key_value_heads = 32 but the source config.json has num_key_value_heads = 8",
    ),
    ("num_key_value_heads", DROP, "num_key_value_heads is missing"),
    ("vocab_size", 128320, "vocab_size = 128320"),
    ("hidden_size", 2048, "hidden_size = 2048"),
    ("intermediate_size", DROP, "intermediate_size is missing"),
    ("num_hidden_layers", 16, "num_hidden_layers = 16"),
    ("max_position_embeddings", 8192, "max_position_embeddings = 8192 but the source config.json has"),
]


@pytest.mark.parametrize("source", [HF4, HF5], ids=["transformers-4", "transformers-5"])
@pytest.mark.parametrize(
    "field,value,text", BROKEN, ids=[f"{b[0]}-{'missing' if b[1] is DROP else 'differs'}" for b in BROKEN]
)
def test_a_missing_or_different_field_is_named(source, field, value, text):
    problems = numerics.check_numerics(_changed(EXPORTED, **{field: value}), source, "fp8")
    assert len(problems) == 1 and problems[0].startswith(field) and text in problems[0], problems


def test_source_without_rope_scaling_wants_none():
    source = _changed(HF4, rope_scaling=None, rope_theta=10000.0)
    exported = _changed(EXPORTED, rotary_base=10000.0, rotary_scaling=DROP)
    assert numerics.check_numerics(exported, source, "fp8") == []
    assert numerics.check_numerics(_changed(exported, rotary_scaling=LLAMA3_ROPE), source, "fp8")
    # transformers 5 spells plain rope as rope_type "default"
    hf5 = _changed(HF5, rope_parameters={"rope_theta": 10000.0, "rope_type": "default"})
    assert numerics.check_numerics(exported, hf5, "fp8") == []


def test_awq_vocab_padding_is_expected_only_for_awq():
    source = _changed(HF4, vocab_size=32001)
    exported = _changed(EXPORTED, vocab_size=32064)  # padded to a multiple of 64, as ModelOpt does for AWQ
    assert numerics.check_numerics(exported, source, "int4_awq") == []
    assert numerics.check_numerics(exported, source, "fp8") == [
        "vocab_size = 32064 but the source config.json has vocab_size = 32001"
    ]


def test_rope_fields_dropped_for_a_transformers_5_source_are_restored():
    exported = _changed(EXPORTED, rotary_base=DROP, rotary_scaling=DROP)
    assert len(numerics.check_numerics(exported, HF5, "fp8")) == 2
    notes = numerics.restore_rope_fields(exported, HF5)
    assert len(notes) == 2 and "rotary_base 500000.0 restored" in notes[0]
    assert exported["rotary_base"] == 500000.0 and exported["rotary_scaling"] == LLAMA3_ROPE
    assert numerics.check_numerics(exported, HF5, "fp8") == []


def test_restore_never_replaces_what_the_export_wrote_nor_touches_transformers_4_sources():
    wrong = _changed(EXPORTED, rotary_base=10000.0)
    assert numerics.restore_rope_fields(wrong, HF5) == [] and wrong["rotary_base"] == 10000.0
    assert numerics.check_numerics(wrong, HF5, "fp8")  # still refused
    dropped = _changed(EXPORTED, rotary_base=DROP)
    assert numerics.restore_rope_fields(dropped, HF4) == []  # transformers 4: ModelOpt's own job; refused
    assert numerics.check_numerics(dropped, HF4, "fp8")[0].startswith("rotary_base is missing")


@pytest.mark.parametrize(
    "version,kwarg",
    [
        ("4.51.3", "torch_dtype"),
        ("4.53.1", "torch_dtype"),
        ("4.55.4", "torch_dtype"),
        ("4.56.0", "dtype"),
        ("4.57.3", "dtype"),
        ("5.24.0", "dtype"),
        ("4.56.0.dev0", "dtype"),
    ],
)
def test_transformers_dtype_keyword(version, kwarg):
    assert compat.transformers_dtype_kwarg(version) == kwarg


def test_quant_cfg_layouts():
    assert compat.quant_cfg_layout([{"quantizer_name": "*", "enable": False}]) == "list"
    assert compat.quant_cfg_layout({"*weight_quantizer": {"num_bits": 8}}) == "dict"
    with pytest.raises(TypeError):
        compat.quant_cfg_layout("FP8")

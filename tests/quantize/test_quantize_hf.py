"""The quantize driver's HF-export mode (``--export_format hf``, the PyTorch backend's unified Hugging Face
checkpoint): real ModelOpt ``export_hf_checkpoint`` on CPU of a tiny random Llama, read back with
safetensors and transformers. No mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.quantize.conftest import quiet
from trtbuild.quantize import QuantizeInputError, QuantizeOptions, build_argv, parse_argv, run_quantize

pytestmark = [pytest.mark.quantize, pytest.mark.slow]

SMALL = {"calib_size": 8, "batch_size": 4, "calib_max_seq_length": 64, "device": "cpu", "export_format": "hf"}


def _dtypes(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return {k: f.get_slice(k).get_dtype() for k in f.keys()}


def test_fp8_with_fp8_kv_exports_a_unified_hf_checkpoint_transformers_reads(tiny_llama, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "hf"
    report = run_quantize(
        QuantizeOptions(
            model_dir=tiny_llama, output_dir=str(out), qformat="fp8", kv_cache_dtype="fp8", **SMALL
        ),
        log=quiet,
    )
    quant = json.loads((out / "hf_quant_config.json").read_text())
    assert quant["producer"]["name"] == "modelopt"
    assert (
        quant["quantization"]["quant_algo"] == "FP8" and quant["quantization"]["kv_cache_quant_algo"] == "FP8"
    )
    assert report["export"]["format"] == "hf" and report["export"]["quantization"] == quant["quantization"]
    assert report["accuracy"]["passed"] is True
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "quantize_report.json"} <= names
    assert not any(n.startswith("rank") for n in names), "the HF checkpoint is not split by rank"
    dtypes = _dtypes(out / "model.safetensors")
    assert dtypes["model.layers.0.mlp.up_proj.weight"] == "F8_E4M3"
    assert dtypes["model.layers.0.mlp.up_proj.weight_scale"] == "F32"
    assert "model.layers.0.self_attn.k_proj.k_scale" in dtypes  # FP8 KV-cache scales
    model = AutoModelForCausalLM.from_pretrained(str(out))  # transformers reads it back
    logits = model(input_ids=torch.tensor([[1, 5, 9]])).logits
    assert logits.shape == (1, 3, 512) and torch.isfinite(logits).all()


def test_int4_awq_exports_group_size_and_packed_weights(tiny_llama, tmp_path):
    out = tmp_path / "awq"
    run_quantize(
        QuantizeOptions(
            model_dir=tiny_llama, output_dir=str(out), qformat="int4_awq", awq_block_size=64, **SMALL
        ),
        log=quiet,
    )
    q = json.loads((out / "hf_quant_config.json").read_text())["quantization"]
    assert q["quant_algo"] == "W4A16_AWQ" and q["group_size"] == 64 and q["kv_cache_quant_algo"] is None
    dtypes = _dtypes(out / "model.safetensors")
    packed = [k for k, d in dtypes.items() if k.endswith("mlp.down_proj.weight")]
    assert packed and all(dtypes[k] in ("U8", "I8") for k in packed)  # two INT4 values per byte


def test_hf_argv_leaves_tp_pp_out_and_names_only_recorded_flags():
    opts = QuantizeOptions(
        model_dir="/m", output_dir="/o", qformat="fp8", kv_cache_dtype="fp8", export_format="hf"
    )
    argv = build_argv(opts)
    assert argv[argv.index("--export_format") + 1] == "hf"
    assert "--tp_size" not in argv and "--pp_size" not in argv
    assert parse_argv(argv, env={}).export_format == "hf"
    engine = build_argv(QuantizeOptions(model_dir="/m", output_dir="/o", qformat="fp8"))
    assert "--export_format" not in engine and "--tp_size" in engine


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"qformat": "int8_sq"}, "INT8 SmoothQuant"),
        ({"kv_cache_dtype": "int8"}, "FP8 KV cache only"),
        ({"tp_size": 2}, "not split"),
    ],
)
def test_hf_export_refuses_what_the_pytorch_backend_does_not_take(tiny_llama, tmp_path, changes, words):
    opts = QuantizeOptions(model_dir=tiny_llama, output_dir=str(tmp_path / "x"), **{**SMALL, **changes})
    with pytest.raises(QuantizeInputError, match=words):
        run_quantize(opts, log=quiet)
    assert not (tmp_path / "x").exists(), "refused before anything was written"

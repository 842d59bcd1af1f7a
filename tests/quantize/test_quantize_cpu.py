"""Real ModelOpt PTQ on CPU of a tiny random Llama: formats x KV cache x tp, pp, the accuracy gate, and
shape errors caught before calibration. No mocks: ModelOpt calibrates and exports for real."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.quantize.conftest import quiet
from trtbuild.quantize import (
    REPORT_NAME,
    AccuracyGateFailed,
    ExportError,
    QuantizeInputError,
    QuantizeOptions,
    ShapeError,
    run_quantize,
)

pytestmark = [pytest.mark.quantize, pytest.mark.slow]

SMALL = {"calib_size": 8, "batch_size": 4, "calib_max_seq_length": 64, "device": "cpu"}
EXPECTED = {  # what ModelOpt 0.47 writes for each format
    "fp8": {"quant_algo": "FP8", "weight_dtype": "float8_e4m3fn"},
    "int8_sq": {"quant_algo": "W8A8_SQ_PER_CHANNEL", "weight_dtype": "int8"},
    "int4_awq": {"quant_algo": "W4A16_AWQ", "weight_dtype": "int8"},  # two int4 values packed per int8
}
KV_ALGO = {None: None, "fp8": "FP8", "int8": "INT8"}


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.parametrize("tp", [1, 2])
@pytest.mark.parametrize("kv", [None, "fp8"])
@pytest.mark.parametrize("fmt", ["fp8", "int8_sq", "int4_awq"])
def test_quantize_export_matrix(tiny_llama, tmp_path, fmt, kv, tp):
    import torch

    out = tmp_path / "ckpt"
    report = run_quantize(
        QuantizeOptions(
            model_dir=tiny_llama, output_dir=str(out), qformat=fmt, kv_cache_dtype=kv, tp_size=tp, **SMALL
        ),
        log=quiet,
    )
    cfg = json.loads((out / "config.json").read_text())
    q = cfg["quantization"]
    assert q["quant_algo"] == EXPECTED[fmt]["quant_algo"]
    assert q["kv_cache_quant_algo"] == KV_ALGO[kv]
    if fmt == "int4_awq":
        assert q["group_size"] == 128 and q["pre_quant_scale"] is True and q["has_zero_point"] is False
    else:
        assert "group_size" not in q
    assert (
        cfg["mapping"]["tp_size"] == tp
        and cfg["mapping"]["pp_size"] == 1
        and cfg["mapping"]["world_size"] == tp
    )
    assert cfg["dtype"] == "float16"  # the tiny checkpoint's dtype (--dtype auto)
    ranks = sorted(p.name for p in out.glob("rank*.safetensors"))
    assert ranks == [f"rank{r}.safetensors" for r in range(tp)]
    assert (out / "tokenizer.json").is_file() and (out / "tokenizer_config.json").is_file()

    for r in range(tp):
        w = _tensors(out / f"rank{r}.safetensors")
        fc = w["transformer.layers.0.mlp.fc.weight"]
        assert str(fc.dtype) == f"torch.{EXPECTED[fmt]['weight_dtype']}"
        # column-parallel fc (up_proj): its 768 output rows split over tp; INT4 packs two values per byte
        assert tuple(fc.shape) == ((768 // tp) // (2 if fmt == "int4_awq" else 1), 256)
        scale = w["transformer.layers.0.mlp.proj.weights_scaling_factor"]
        assert torch.isfinite(scale).all() and (scale > 0).all()
        if fmt == "int4_awq":  # per-block scales: (out, in_per_rank / 128) for the row-parallel proj
            assert tuple(scale.shape) == (256, 768 // tp // 128)
            assert "transformer.layers.0.mlp.proj.prequant_scaling_factor" in w
        elif fmt == "int8_sq":  # per-channel weight scales and smoothing factors
            assert tuple(scale.shape) == (256,)
            assert "transformer.layers.0.mlp.proj.prequant_scaling_factor" in w
        else:
            assert tuple(scale.shape) == (1,)
            assert "transformer.layers.0.mlp.proj.activation_scaling_factor" in w
        has_kv = "transformer.layers.0.attention.kv_cache_scaling_factor" in w
        assert has_kv == (kv is not None)
        assert (
            "lm_head.weight" in w and str(w["lm_head.weight"].dtype) == "torch.float16"
        )  # lm_head stays float

    # the report shows that calibration happened and what it cost
    rep = json.loads((out / REPORT_NAME).read_text())
    assert rep == json.loads(json.dumps(report, default=str))
    assert (
        rep["status"] == "ok" and rep["export"]["quantization"]["quant_algo"] == EXPECTED[fmt]["quant_algo"]
    )
    kinds = rep["quantizers"]["by_kind"]
    assert (
        kinds["weight_quantizer"]["enabled"] == 14 == kinds["weight_quantizer"]["calibrated"]
    )  # 7 linears x 2
    assert kinds["weight_quantizer"]["amax_max"] > kinds["weight_quantizer"]["amax_min"] > 0
    if fmt in ("fp8", "int8_sq"):
        assert kinds["input_quantizer"]["calibrated"] == kinds["input_quantizer"]["enabled"] == 14
    else:
        assert "input_quantizer" not in kinds  # weight-only; AWQ scales are the pre_quant_scale factors
        assert kinds["weight_quantizer"]["block_sizes"]["-1"] == 128
    if kv:
        assert kinds["k_bmm_quantizer"]["calibrated"] == 2 and kinds["v_bmm_quantizer"]["calibrated"] == 2
        assert kinds["k_bmm_quantizer"]["num_bits"] == [4, 3]
    cal = rep["calibration"]
    assert (
        cal["dataset"] == "builtin" and cal["samples"] == 8 and cal["seq_len"] == 64 and cal["tokens"] == 512
    )
    assert cal["seconds"] > 0
    acc = rep["accuracy"]
    assert acc["passed"] and acc["enforced"] and acc["prompts"] == 16 and acc["positions"] > 16 * 10
    assert acc["top1_agreement"] >= acc["min_top1_agreement"] and acc["mean_kl"] <= acc["max_kl_divergence"]
    assert set(rep["versions"]) >= {"torch", "modelopt", "transformers"} and rep["versions"]["modelopt"]
    assert rep["format"]["calib_dtype"] == "float32" and rep["format"]["export_dtype"] == "float16"
    assert sorted(f["path"] for f in rep["export"]["files"]) == sorted(
        p.name for p in out.iterdir() if p.name != REPORT_NAME
    )


def test_int8_kv_cache_and_pipeline_parallel(tiny_llama, tmp_path):
    out = tmp_path / "ckpt"
    run_quantize(
        QuantizeOptions(
            model_dir=tiny_llama,
            output_dir=str(out),
            qformat="int8_sq",
            kv_cache_dtype="int8",
            tp_size=2,
            pp_size=2,
            **SMALL,
        ),
        log=quiet,
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["quantization"]["kv_cache_quant_algo"] == "INT8"
    assert cfg["mapping"] == {**cfg["mapping"], "tp_size": 2, "pp_size": 2, "world_size": 4}
    assert cfg["num_hidden_layers"] == 2
    ranks = {r: _tensors(out / f"rank{r}.safetensors") for r in range(4)}
    # ranks 0,1 = first stage (embedding, layer 0); ranks 2,3 = last stage (layer 1, ln_f, lm_head)
    for r in (0, 1):
        assert "transformer.vocab_embedding.weight" in ranks[r] and "lm_head.weight" not in ranks[r]
    for r in (2, 3):
        assert "lm_head.weight" in ranks[r] and "transformer.vocab_embedding.weight" not in ranks[r]


def test_kv_cache_only_with_full_prec(tiny_llama, tmp_path):
    out = tmp_path / "ckpt"
    rep = run_quantize(
        QuantizeOptions(
            model_dir=tiny_llama, output_dir=str(out), qformat="full_prec", kv_cache_dtype="fp8", **SMALL
        ),
        log=quiet,
    )
    q = json.loads((out / "config.json").read_text())["quantization"]
    assert q["quant_algo"] is None and q["kv_cache_quant_algo"] == "FP8"
    assert set(rep["quantizers"]["by_kind"]) == {"k_bmm_quantizer", "v_bmm_quantizer"}


def _corrupt_weight_scales(model) -> None:
    """Shrink every weight quantizer's amax 10x after calibration: most weights clip."""
    from modelopt.torch.quantization.nn import TensorQuantizer

    for name, q in model.named_modules():
        if isinstance(q, TensorQuantizer) and q.is_enabled and name.endswith("weight_quantizer"):
            q.amax = q.amax * 0.1


@pytest.mark.parametrize("fmt", ["fp8", "int4_awq"])
def test_accuracy_gate_catches_broken_calibration(tiny_llama, tmp_path, fmt):
    out = tmp_path / "ckpt"
    opts = QuantizeOptions(model_dir=tiny_llama, output_dir=str(out), qformat=fmt, **SMALL)
    with pytest.raises(AccuracyGateFailed, match=f"accuracy gate failed for {fmt}") as err:
        run_quantize(opts, post_calibration_hook=_corrupt_weight_scales, log=quiet)
    acc = err.value.report["accuracy"]
    assert not acc["passed"] and acc["failures"]
    assert acc["top1_agreement"] < 0.7 and acc["mean_kl"] > 0.05  # correct: >= 0.89 and <= 0.006 (options.py)
    assert err.value.exit_code == 1
    # the report is on disk, the checkpoint is not
    rep = json.loads((out / REPORT_NAME).read_text())
    assert rep["status"] == "accuracy_gate_failed" and rep["export"]["files"] == []
    assert sorted(p.name for p in out.iterdir()) == [REPORT_NAME]

    # gate off: same figures reported, checkpoint written; the earlier failed run is replaced
    opts.accuracy_gate = False
    rep = run_quantize(opts, post_calibration_hook=_corrupt_weight_scales, log=quiet)
    assert rep["status"] == "ok" and not rep["accuracy"]["passed"] and not rep["accuracy"]["enforced"]
    assert (out / "rank0.safetensors").is_file()


def test_awq_shape_error_before_calibration_and_the_fix_works(awq_misfit_llama, tmp_path):
    out = tmp_path / "ckpt"
    opts = QuantizeOptions(
        model_dir=awq_misfit_llama, output_dir=str(out), qformat="int4_awq", tp_size=2, **SMALL
    )
    t0 = time.perf_counter()
    with pytest.raises(ShapeError) as err:
        run_quantize(opts, log=quiet)
    assert time.perf_counter() - t0 < 5  # nothing was loaded or calibrated
    assert err.value.exit_code == 2 and not out.exists()
    msg = str(err.value)
    assert "quantization.awq_block_size [--awq_block_size]" in msg and "320" in msg and "to 64" in msg

    # the rule matches ModelOpt: bare export of this model at tp 2 with block 128 fails ...
    import modelopt.torch.quantization as mtq
    import torch
    from modelopt.torch.export import export_tensorrt_llm_checkpoint
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(awq_misfit_llama, dtype=torch.float32)
    ids = torch.randint(0, 512, (2, 32))
    model = mtq.quantize(model, mtq.INT4_AWQ_CFG, lambda m: m(input_ids=ids))
    with pytest.raises(NotImplementedError, match="not divisible for block size 128"):
        export_tensorrt_llm_checkpoint(
            model,
            decoder_type="llama",
            dtype=torch.float16,
            export_dir=tmp_path / "bare",
            inference_tensor_parallel=2,
        )
    # ... and the suggested fix (block 64) goes through the driver
    opts.awq_block_size = 64
    run_quantize(opts, log=quiet)
    assert json.loads((out / "config.json").read_text())["quantization"]["group_size"] == 64


def test_input_errors(tiny_llama, tmp_path):
    with pytest.raises(QuantizeInputError, match="no such directory"):
        run_quantize(
            QuantizeOptions(model_dir=str(tmp_path / "nope"), output_dir=str(tmp_path / "o"), **SMALL)
        )
    with pytest.raises(QuantizeInputError, match="never downloads"):
        run_quantize(
            QuantizeOptions(
                model_dir=tiny_llama, output_dir=str(tmp_path / "o"), calib_dataset="cnn_dailymail", **SMALL
            )
        )
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(QuantizeInputError, match="not empty"):
        run_quantize(QuantizeOptions(model_dir=tiny_llama, output_dir=str(foreign), **SMALL))
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(QuantizeInputError, match="--tp_size 0"):
        run_quantize(QuantizeOptions(model_dir=tiny_llama, output_dir=str(tmp_path / "o"), tp_size=0))


def test_custom_calibration_file(tiny_llama, tmp_path):
    data = tmp_path / "calib.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"text": f"Line {i}: the quick brown fox jumps over the lazy dog {i} times."})
            for i in range(5)
        )
        + "\n"
    )
    rep = run_quantize(
        QuantizeOptions(
            model_dir=tiny_llama,
            output_dir=str(tmp_path / "o"),
            qformat="fp8",
            calib_dataset=str(data),
            **SMALL,
        ),
        log=quiet,
    )
    cal = rep["calibration"]
    assert cal["dataset"] == str(data.resolve()) and cal["passages"] == 5 and cal["passes"] > 1
    assert rep["accuracy"]["prompts"] == 16  # held-out prompts come from the built-in set


LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 256,
}


@pytest.fixture(scope="module")
def llama3_rope_model(stack, tmp_path_factory) -> str:
    """A tiny Llama with Llama 3's rope base (500000) and llama3 scaling, in this transformers' layout."""
    from tests.tiny_models import make_tiny_llama

    return str(
        make_tiny_llama(
            tmp_path_factory.mktemp("llama3-rope"), rope_theta=500000.0, rope_scaling=dict(LLAMA3_ROPE)
        )
    )


def test_llama3_rope_survives_the_export(llama3_rope_model, tmp_path):
    """On this stack (a fresh install: ModelOpt 0.47 + transformers 5) ModelOpt's export writes no rotary_base
    or rotary_scaling; the driver restores them from the source config and says so."""
    import transformers

    out = tmp_path / "ckpt"
    rep = run_quantize(
        QuantizeOptions(model_dir=llama3_rope_model, output_dir=str(out), qformat="int8_sq", **SMALL),
        log=quiet,
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["rotary_base"] == 500000.0
    assert (
        cfg["rotary_scaling"] == LLAMA3_ROPE | cfg["rotary_scaling"]
        and cfg["rotary_scaling"]["factor"] == 8.0
    )
    assert rep["export"]["numerics"]["rotary_base"] == 500000.0
    restored = rep["compat"]["restored"]
    if int(transformers.__version__.split(".")[0]) >= 5:
        assert any(r.startswith("rotary_base 500000.0 restored") for r in restored)
        assert any(r.startswith("rotary_scaling") for r in restored)
    else:
        assert restored == []


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("norm_epsilon", 1e-05, "norm_epsilon = 1e-05 but the source config.json has rms_norm_eps = 1e-06"),
        ("num_key_value_heads", None, "num_key_value_heads is missing"),
        ("rotary_base", 10000.0, "rotary_base = 10000.0 but the source config.json has"),
    ],
)
def test_export_that_changes_numerics_fails_and_leaves_no_checkpoint(
    llama3_rope_model, tmp_path, field, value, needle
):
    def tamper(staging: Path) -> None:
        cfg_path = staging / "config.json"
        cfg = json.loads(cfg_path.read_text())
        if value is None:
            cfg.pop(field)
        else:
            cfg[field] = value
        cfg_path.write_text(json.dumps(cfg))

    out = tmp_path / "ckpt"
    opts = QuantizeOptions(model_dir=llama3_rope_model, output_dir=str(out), qformat="int8_sq", **SMALL)
    with pytest.raises(ExportError) as err:
        run_quantize(opts, post_export_hook=tamper, log=quiet)
    assert needle in str(err.value) and err.value.exit_code == 1
    assert "source model's numerics" in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == []  # no config, no ranks, no report, no staging

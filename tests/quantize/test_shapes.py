"""check_shapes: pure, stdlib-only shape rules with the recipe field and a working fix in each problem."""

from __future__ import annotations

import subprocess
import sys

from trtbuild.quantize.shapes import check_shapes, errors_only

LLAMA_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 32,
    "vocab_size": 128256,
}
TINY = {
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 512,
}


def test_valid_layouts_have_no_problems():
    for fmt in ("fp8", "int8_sq", "int4_awq"):
        for tp in (1, 2, 4, 8):
            assert check_shapes(LLAMA_8B, fmt, tp, 1, 128) == []
        for tp in (1, 2):
            for pp in (1, 2):
                assert check_shapes(TINY, fmt, tp, pp, 128) == []


def test_awq_block_divisibility_names_block_size_field_and_a_block_that_works():
    cfg = {**TINY, "intermediate_size": 640}  # 640/2 = 320: a multiple of 64, not of 128
    assert check_shapes(cfg, "int4_awq", 1, 1, 128) == []  # 640 = 5 x 128 at tp 1
    problems = check_shapes(cfg, "int4_awq", 2, 1, 128)
    assert len(problems) == 1
    p = problems[0]
    assert p.field == "quantization.awq_block_size" and p.flag == "--awq_block_size" and p.severity == "error"
    assert "intermediate_size (down_proj input)=640 / tp=2 = 320" in p.message
    assert "quantization.awq_block_size to 64" in p.fix
    assert check_shapes(cfg, "int4_awq", 2, 1, 64) == []
    # the same model is fine for formats without blocks
    assert check_shapes(cfg, "fp8", 2, 1, 128) == []


def test_awq_misfit_with_no_block_fix_points_at_tp():
    cfg = {**LLAMA_8B, "intermediate_size": 14336}  # 14336/8 = 1792 = 14 x 128: fine; /16 would break heads
    assert check_shapes(cfg, "int4_awq", 8, 1, 128) == []
    cfg = {
        **TINY,
        "hidden_size": 320,
        "num_attention_heads": 5,
        "num_key_value_heads": 5,
        "head_dim": 64,
        "intermediate_size": 768,
    }
    problems = errors_only(check_shapes(cfg, "int4_awq", 1, 1, 128))
    assert problems and "hidden_size (q/k/v, gate/up input)=320" in problems[0].message
    assert "awq_block_size to 64" in problems[0].fix


def test_heads_and_kv_heads_must_divide_by_tp():
    problems = check_shapes(TINY, "fp8", 4, 1, 128)  # 4 heads ok, 2 KV heads not
    assert [p.field for p in errors_only(problems)] == ["parallelism.tp"]
    assert "num_key_value_heads=2" in problems[0].message
    assert "[1, 2]" in problems[0].fix
    problems = errors_only(
        check_shapes(
            {**TINY, "num_attention_heads": 6, "num_key_value_heads": 6, "head_dim": 64}, "fp8", 4, 1, 128
        )
    )
    assert any("num_attention_heads=6" in p.message for p in problems)


def test_layers_must_divide_by_pp_and_vocab_is_a_warning():
    problems = check_shapes(TINY, "fp8", 1, 3, 128)
    assert [(p.field, p.severity) for p in problems] == [("parallelism.pp", "error")]
    assert "num_hidden_layers=2" in problems[0].message and "[1, 2]" in problems[0].fix
    problems = check_shapes({**TINY, "vocab_size": 511}, "fp8", 2, 1, 128)
    assert [(p.field, p.severity) for p in problems] == [("parallelism.tp", "warning")]
    assert errors_only(problems) == []


def test_bad_inputs_are_problems_not_exceptions():
    assert check_shapes(TINY, "int3", 1, 1, 128)[0].field == "quantization.format"
    assert check_shapes(TINY, "fp8", 0, 1, 128)[0].field == "parallelism.tp"
    assert check_shapes({"hidden_size": 8}, "fp8", 1, 1, 128)[0].field == "model"
    assert check_shapes({**TINY, "hidden_size": "256"}, "fp8", 1, 1, 128)[0].field == "model"
    assert check_shapes(TINY, "int4_awq", 1, 1, 0)[0].field == "quantization.awq_block_size"
    rendered = check_shapes(TINY, "fp8", 4, 1, 128)[0].render()
    assert rendered.startswith("parallelism.tp [--tp_size]: ") and "\n  fix: " in rendered


def test_multimodal_text_config_is_read():
    assert check_shapes({"text_config": TINY}, "int4_awq", 2, 2, 128) == []


def test_importable_without_torch_transformers_or_modelopt():
    code = (
        "import sys\n"
        "import trtbuild.quantize, trtbuild.quantize.shapes, trtbuild.quantize.options, "
        "trtbuild.quantize.driver\n"
        "heavy = [m for m in ('torch', 'transformers', 'modelopt', 'numpy', 'pydantic', 'click', 'registry')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

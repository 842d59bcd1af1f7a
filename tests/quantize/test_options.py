"""The driver's argv is a subset of TensorRT-LLM's quantize.py flags (cli_specs/*.json), with their
meaning."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from trtbuild.quantize.options import (
    ENV_CPU_OFFLOAD,
    ENV_GATE,
    ENV_MAX_GPU_MEMORY,
    ENV_MAX_KL,
    ENV_MIN_TOP1,
    GATE_DEFAULTS,
    ArgvError,
    QuantizeOptions,
    _parser,
    build_argv,
    build_env,
    parse_argv,
    validate_options,
)

ROOT = Path(__file__).resolve().parents[2]
SPEC = {  # quantize.py's flags: the same listing in every recorded release family
    f["flag"]: f
    for f in json.loads((ROOT / "trtbuild" / "data" / "cli_specs" / "1.2.json").read_text())["tools"][
        "quantize"
    ]["flags"]
}
# The HF export of the PyTorch backend: quantize.py@059c97c1 has --export_format {tensorrt_llm, hf}; the
# main listing (c8c6df08) does not (recorded in the spec as "quantize_other_version").
SPEC["--export_format"] = {"flag": "--export_format", "type": "str", "choices": ["tensorrt_llm", "hf"]}

FULL = QuantizeOptions(
    model_dir="/m",
    output_dir="/o",
    qformat="int4_awq",
    kv_cache_dtype="fp8",
    tp_size=2,
    pp_size=2,
    calib_dataset="/data/c.jsonl",
    calib_size=64,
    batch_size=4,
    calib_max_seq_length=256,
    awq_block_size=64,
    dtype="bfloat16",
    device="cpu",
    seed=7,
    tokenizer_max_seq_length=4096,
    accuracy_gate=False,
    min_top1=0.5,
    max_kl=0.3,
)


def _pairs(argv):
    assert len(argv) % 2 == 0
    return dict(zip(argv[::2], argv[1::2], strict=True))


def test_build_argv_uses_only_quantize_py_flags_with_valid_values():
    pairs = _pairs(build_argv(FULL))
    assert set(pairs) <= set(SPEC), set(pairs) - set(SPEC)
    for flag, value in pairs.items():
        spec = SPEC[flag]
        if spec["choices"]:
            assert value in spec["choices"], (flag, value)
        if spec["type"] == "int":
            int(value)
    assert pairs["--qformat"] == "int4_awq" and pairs["--kv_cache_dtype"] == "fp8"
    assert pairs["--awq_block_size"] == "64" and pairs["--tp_size"] == "2" and pairs["--pp_size"] == "2"


def test_parser_accepts_only_spec_flags_and_choices():
    for action in _parser()._actions:
        for flag in action.option_strings:
            if flag in ("-h", "--help"):
                continue
            assert flag in SPEC, flag
            if action.choices:
                assert set(action.choices) <= set(c for c in SPEC[flag]["choices"] if c), flag
            if SPEC[flag]["type"] == "int":
                assert action.type is int, flag


def test_optional_flags_left_out():
    pairs = _pairs(build_argv(QuantizeOptions(model_dir="/m", output_dir="/o", qformat="fp8")))
    assert "--kv_cache_dtype" not in pairs and "--awq_block_size" not in pairs


def test_argv_and_env_round_trip():
    env = build_env(FULL, torch_extensions_dir="/cache/ext")
    assert env == {
        ENV_GATE: "0",
        "TRTBUILD_QUANT_GATE_PROMPTS": "16",
        "TRTBUILD_QUANT_GATE_TOKENS": "32",
        ENV_MIN_TOP1: "0.5",
        ENV_MAX_KL: "0.3",
        "TORCH_EXTENSIONS_DIR": "/cache/ext",
    }
    assert parse_argv(build_argv(FULL), env) == FULL
    plain = QuantizeOptions(model_dir="/m", output_dir="/o", qformat="int8_sq")
    assert parse_argv(build_argv(plain), {}) == plain


def test_placement_settings_travel_as_env():
    opts = QuantizeOptions(model_dir="/m", output_dir="/o", max_gpu_memory_gib=70, cpu_offload=True)
    env = build_env(opts)
    assert env[ENV_MAX_GPU_MEMORY] == "70.0" and env[ENV_CPU_OFFLOAD] == "1"
    assert parse_argv(build_argv(opts), env) == QuantizeOptions(
        model_dir="/m", output_dir="/o", qformat="fp8", max_gpu_memory_gib=70.0, cpu_offload=True
    )
    plain = build_env(QuantizeOptions(model_dir="/m", output_dir="/o"))
    assert ENV_MAX_GPU_MEMORY not in plain and ENV_CPU_OFFLOAD not in plain
    with pytest.raises(ArgvError, match=ENV_CPU_OFFLOAD):
        parse_argv(["--model_dir", "/m"], {ENV_CPU_OFFLOAD: "sometimes"})
    with pytest.raises(ArgvError, match=ENV_MAX_GPU_MEMORY):
        parse_argv(["--model_dir", "/m"], {ENV_MAX_GPU_MEMORY: "lots"})
    bad = QuantizeOptions("/m", "/o", max_gpu_memory_gib=-1.0)
    assert any(ENV_MAX_GPU_MEMORY in p for p in validate_options(bad))


def test_bad_argv_and_env_raise_argv_error():
    with pytest.raises(ArgvError, match="--qformat"):
        parse_argv(["--model_dir", "/m", "--qformat", "int3"], {})
    with pytest.raises(ArgvError, match="unrecognized arguments: --calib-samples"):
        parse_argv(["--model_dir", "/m", "--calib-samples", "3"], {})
    with pytest.raises(ArgvError, match=ENV_MIN_TOP1):
        parse_argv(["--model_dir", "/m"], {ENV_MIN_TOP1: "high"})
    with pytest.raises(ArgvError, match=ENV_GATE):
        parse_argv(["--model_dir", "/m"], {ENV_GATE: "maybe"})


def test_thresholds_and_validation():
    assert QuantizeOptions("/m", "/o", qformat="int4_awq").thresholds() == GATE_DEFAULTS["int4_awq"]
    assert QuantizeOptions("/m", "/o", qformat="fp8", min_top1=0.99).thresholds() == (
        0.99,
        GATE_DEFAULTS["fp8"][1],
    )
    bad = QuantizeOptions("/m", "/o", qformat="fp8", tp_size=0, calib_size=-1, min_top1=2.0)
    problems = validate_options(bad)
    assert any("--tp_size 0" in p for p in problems) and any("--calib_size -1" in p for p in problems)
    assert any("top-1" in p for p in problems)
    assert validate_options(FULL) == []


def test_driver_modules_import_only_allowed_libraries():
    """The driver runs in the toolchain image with trtbuild/ on PYTHONPATH: stdlib, torch, transformers,
    modelopt, safetensors, numpy, accelerate (in the TensorRT-LLM images; placement.py imports it only for
    an offloaded model) and trtbuild's own stdlib modules only (of trtbuild.settings, which names the
    TRTBUILD_QUANT_* variables, only what it imports when loaded: its functions import the registry)."""
    allowed = set(sys.stdlib_module_names) | {
        "torch",
        "transformers",
        "modelopt",
        "safetensors",
        "numpy",
        "accelerate",
        "trtbuild",
    }
    pkg = ROOT / "trtbuild" / "quantize"
    settings = ROOT / "trtbuild" / "settings.py"
    for path in [
        *pkg.glob("*.py"),
        ROOT / "trtbuild" / "errors.py",
        ROOT / "trtbuild" / "exit_codes.py",
        ROOT / "trtbuild" / "__init__.py",
        settings,
    ]:
        tree = ast.parse(path.read_text())
        if path == settings:  # module level only, without the `if TYPE_CHECKING:` block
            tree.body = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.If))]
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("trtbuild"):
                modules = (
                    [f"trtbuild.{a.name}" for a in node.names] if node.module == "trtbuild" else [node.module]
                )
                for module in modules:
                    assert module in (
                        "trtbuild.errors",
                        "trtbuild.exit_codes",
                        "trtbuild.settings",
                    ) or module.startswith("trtbuild.quantize"), module

"""A quantized build end to end: trtbuild's ModelOpt driver runs for real inside the toolchain double
(host torch + ModelOpt mounted read-only), the accuracy gate passes, trtllm-build (double) builds the FP8
checkpoint, and verify checks the engine's quantization against the recipe."""

from __future__ import annotations

import json

import pytest

from tests.quantize.conftest import require_stack
from tests.toolchain_double.fixture import host_python_mounts

pytestmark = [pytest.mark.docker, pytest.mark.quantize, pytest.mark.slow]

QUANTIZED = """
[quantization]
format = "fp8"
kv_cache = "fp8"
device = "cpu"
[quantization.calibration]
samples = 8
max_seq_len = 64
batch_size = 4
"""


@pytest.fixture(scope="module")
def quant_model(tmp_path_factory):
    require_stack()
    from tests.tiny_models import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("qmodel") / "tiny-llama")


def _python_flags() -> list[str]:
    mounts, env = host_python_mounts()
    flags = [arg for m in mounts for arg in ("--mount", f"{m.source}:{m.target}:ro")]
    return flags + ["--env", f"PYTHONPATH={env['PYTHONPATH']}"]


@pytest.mark.parametrize("backend", ["local-sqlite"], indirect=True)
def test_fp8_build_through_the_quantize_driver(project, quant_model):
    recipe = project.recipe(
        "fp8.toml", model=quant_model, tp=1, extra=QUANTIZED, recipe_name="tiny-llama-fp8"
    )
    first = project.build(recipe, *_python_flags())
    assert first["steps_run"] == ["quantize", "build", "verify", "publish"]
    shown = json.loads(project.cli("show", first["hash"], "--json").stdout)
    assert shown["metadata"]["quant_format"] == "fp8" and shown["metadata"]["kv_cache_quant"] == "fp8"
    dest = project.root / "engine"
    assert project.cli("pull", first["hash"], str(dest)).returncode == 0
    quant = json.loads((dest / "config.json").read_text())["pretrained_config"]["quantization"]
    assert quant["quant_algo"] == "FP8" and quant["kv_cache_quant_algo"] == "FP8"
    assert (dest / "tokenizer" / "tokenizer.json").is_file()
    ckpt = json.loads(project.cli("ls", "--kind", "checkpoint", "--json").stdout)
    assert [a["build_key"] for a in ckpt] == [first["checkpoint_key"]]

    # only shapes change: the quantized checkpoint comes from the registry, ModelOpt does not run again
    project.recipe(
        "fp8.toml", model=quant_model, tp=1, extra=QUANTIZED, recipe_name="tiny-llama-fp8", max_batch_size=16
    )
    second = project.build(recipe, *_python_flags())
    assert second["checkpoint_key"] == first["checkpoint_key"]
    assert second["steps_run"] == ["build", "verify", "publish"]


@pytest.mark.parametrize("backend", ["local-sqlite"], indirect=True)
def test_accuracy_gate_failure_stops_the_build(project, quant_model):
    strict = QUANTIZED + "[quantization.accuracy]\nmin_top1_agreement = 1.0\nmax_kl_divergence = 0.0\n"
    recipe = project.recipe("strict.toml", model=quant_model, tp=1, extra=strict, recipe_name="tiny-strict")
    result = project.cli("build", str(recipe), *project.build_flags, *_python_flags())
    assert result.returncode == 1
    assert "accuracy gate" in result.stderr.lower() and "Traceback" not in result.stderr.split("│")[-1]
    assert json.loads(project.cli("ls", "--json").stdout) == [], "nothing is published when the gate fails"

"""The two command lines as real processes: ``trtbuild quantize`` and the driver
``python3 -m trtbuild.quantize`` (argv from build_argv, settings from build_env), with their exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trtbuild.quantize import REPORT_NAME, QuantizeOptions, build_argv, build_env

pytestmark = [pytest.mark.quantize, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", **(env or {})},
    )


def test_trtbuild_quantize_cli(tiny_llama, tmp_path):
    out = tmp_path / "ckpt"
    p = _run(
        [
            "-m",
            "trtbuild",
            "quantize",
            tiny_llama,
            str(out),
            "--format",
            "int4_awq",
            "--kv-cache",
            "fp8",
            "--tp",
            "2",
            "--calib-samples",
            "8",
            "--calib-seq-len",
            "64",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads(p.stdout)
    assert report["export"]["quantization"]["quant_algo"] == "W4A16_AWQ"
    assert report["export"]["mapping"]["tp_size"] == 2
    assert (out / "rank1.safetensors").is_file() and (out / REPORT_NAME).is_file()

    # thresholds no real quantization meets: the gate fails, exit 1, plain message
    p = _run(
        [
            "-m",
            "trtbuild",
            "quantize",
            tiny_llama,
            str(tmp_path / "strict"),
            "--format",
            "fp8",
            "--calib-samples",
            "8",
            "--calib-seq-len",
            "64",
            "--device",
            "cpu",
            "--min-top1",
            "1.0",
            "--max-kl",
            "0",
        ]
    )
    assert p.returncode == 1
    assert "accuracy gate failed for fp8" in p.stderr and "Traceback" not in p.stderr


def test_trtbuild_quantize_cli_bad_input_exits_2(awq_misfit_llama, tmp_path):
    p = _run(
        [
            "-m",
            "trtbuild",
            "quantize",
            str(tmp_path / "missing"),
            str(tmp_path / "o"),
            "--format",
            "fp8",
            "--device",
            "cpu",
        ]
    )
    assert p.returncode == 2 and "no such directory" in p.stderr and "Traceback" not in p.stderr
    p = _run(
        [
            "-m",
            "trtbuild",
            "quantize",
            awq_misfit_llama,
            str(tmp_path / "o"),
            "--format",
            "int4_awq",
            "--tp",
            "2",
            "--device",
            "cpu",
        ]
    )
    assert p.returncode == 2 and "quantization.awq_block_size" in p.stderr and "Traceback" not in p.stderr
    p = _run(["-m", "trtbuild", "quantize", awq_misfit_llama, str(tmp_path / "o"), "--format", "int2"])
    assert p.returncode == 2 and "int2" in p.stderr


def test_driver_module_with_builder_argv_and_env(tiny_llama, tmp_path):
    opts = QuantizeOptions(
        model_dir=tiny_llama,
        output_dir=str(tmp_path / "ckpt"),
        qformat="int8_sq",
        kv_cache_dtype="int8",
        tp_size=2,
        calib_size=8,
        batch_size=4,
        calib_max_seq_length=64,
        device="cpu",
        gate_prompts=8,
    )
    p = _run(["-m", "trtbuild.quantize", *build_argv(opts)], env=build_env(opts))
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads((tmp_path / "ckpt" / REPORT_NAME).read_text())
    assert report["argv"] == build_argv(opts)
    assert report["export"]["quantization"]["kv_cache_quant_algo"] == "INT8"
    assert report["accuracy"]["prompts"] == 8

    p = _run(
        [
            "-m",
            "trtbuild.quantize",
            "--model_dir",
            tiny_llama,
            "--output_dir",
            str(tmp_path / "x"),
            "--calib_dataset",
            "cnn_dailymail",
            "--device",
            "cpu",
        ]
    )
    assert p.returncode == 2 and "never downloads" in p.stderr and "Traceback" not in p.stderr
    p = _run(["-m", "trtbuild.quantize", "--model_dir", tiny_llama, "--calib-size", "8"])
    assert p.returncode == 2 and "unrecognized arguments" in p.stderr
    p = _run(["-m", "trtbuild.quantize", "--help"])
    assert p.returncode == 0 and "--qformat" in p.stdout

"""An accelerate-offloaded model calibrates and exports like a whole one (real ModelOpt, CPU).

On a GPU host, CPU offload (placement.py, ``cpu_offload``) leaves the offloaded layers' parameters on the
meta device between forward passes, and ModelOpt's TensorRT-LLM export then fails ("Cannot copy out of
meta tensor"). ``materialize_offloaded`` gives them their CPU weights first. The same hooks arise here
with a disk-offloaded layer (execution device: the CPU), so the test runs without a GPU: the export of
the offloaded model must equal the export of the model loaded whole, byte for byte, in every format.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from trtbuild.quantize import formats
from trtbuild.quantize.placement import materialize_offloaded

pytestmark = [pytest.mark.quantize, pytest.mark.slow]

OFFLOADED = {
    "model.embed_tokens": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "disk",
    "model.norm": "cpu",
    "model.rotary_emb": "cpu",
    "lm_head": "cpu",
}


@pytest.fixture(scope="module")
def accelerate_installed(stack) -> None:
    if importlib.util.find_spec("accelerate") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("needs accelerate (pip install 'trtbuild[quantize]')")
        pytest.skip("needs accelerate")


def _quantize_and_export(model_dir: str, fmt: str, out: Path, device_map: dict | None, offload: Path) -> list:
    import modelopt.torch.quantization as mtq
    import torch
    from modelopt.torch.export import export_tensorrt_llm_checkpoint
    from transformers import AutoModelForCausalLM

    kw = {"device_map": device_map, "offload_folder": str(offload)} if device_map else {}
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **kw).eval()
    ids = torch.randint(3, 500, (8, 64), generator=torch.Generator().manual_seed(1))

    def loop(m) -> None:
        with torch.no_grad():
            for i in range(0, 8, 4):
                m(input_ids=ids[i : i + 4], use_cache=False)

    model = mtq.quantize(model, formats.quant_config(mtq, fmt, None, 128), loop)
    moved = materialize_offloaded(model)
    with torch.no_grad():
        export_tensorrt_llm_checkpoint(
            model, decoder_type="llama", dtype=torch.float16, export_dir=out, inference_tensor_parallel=1
        )
    return moved


@pytest.mark.parametrize("fmt", ["fp8", "int8_sq", "int4_awq"])
def test_offloaded_model_exports_like_the_whole_one(accelerate_installed, tiny_llama, tmp_path, fmt):
    import torch
    from safetensors.torch import load_file

    whole, split = tmp_path / "whole", tmp_path / "split"
    assert _quantize_and_export(tiny_llama, fmt, whole, None, tmp_path / "o1") == []
    moved = _quantize_and_export(tiny_llama, fmt, split, OFFLOADED, tmp_path / "o2")
    assert moved and all(name.startswith("model.layers.1") for name in moved)  # only the offloaded layer
    a, b = load_file(str(whole / "rank0.safetensors")), load_file(str(split / "rank0.safetensors"))
    assert a.keys() == b.keys()
    for name in a:  # byte for byte (int8/fp8 weights, float scales)
        assert torch.equal(a[name].reshape(-1).view(torch.uint8), b[name].reshape(-1).view(torch.uint8)), name


def test_whole_model_is_left_alone(accelerate_installed, tiny_llama):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    assert materialize_offloaded(model) == []

"""CUDA placement of the quantize driver (trtbuild/quantize/placement.py), decided before any weight is
loaded: which GPUs, each GPU's weight budget, CPU offload, and where calibration batches and gate prompts go.
Stdlib only: no torch, no GPU."""

from __future__ import annotations

import json
import struct

import pytest

from trtbuild.quantize.errors import QuantizeInputError
from trtbuild.quantize.placement import (
    CONTEXT_RESERVE_BYTES,
    GIB,
    Gpu,
    activation_reserve,
    checkpoint_weight_bytes,
    devices_used,
    input_device,
    plan_placement,
)

H200 = 143771 * 1024**2  # nvidia-smi's memory.total on the device tool's H200s
LLAMA3_70B = {"hidden_size": 8192, "intermediate_size": 28672, "vocab_size": 128256}
LLAMA3_70B_BF16 = 70_553_706_496 * 2  # parameters x 2 bytes


def _gpus(n: int, free: int = H200 - GIB) -> list[Gpu]:
    return [Gpu(i, "NVIDIA H200", H200, free) for i in range(n)]


def test_one_gpu_that_fits_takes_the_whole_model_without_hooks():
    p = plan_placement(_gpus(1), 2 * GIB, GIB)
    assert p.device_map == {"": 0} and p.max_memory is None and not p.cpu_offload
    assert p.reserve_bytes == CONTEXT_RESERVE_BYTES + GIB


def test_several_gpus_split_balanced_with_a_budget_per_gpu():
    gpus = _gpus(2, free=100 * GIB)
    p = plan_placement(gpus, 2 * GIB, 5 * GIB)
    assert p.device_map == "auto" and not p.cpu_offload
    assert p.max_memory == {0: 100 * GIB - 7 * GIB, 1: 100 * GIB - 7 * GIB}  # free - context - batch
    assert "split over 2 GPUs" in " ".join(p.notes)
    d = p.as_dict()
    assert d["max_memory"] == {"0": 93 * GIB, "1": 93 * GIB} and [g["index"] for g in d["gpus"]] == [0, 1]
    json.dumps(d)  # goes into quantize_report.json


def test_max_gpu_memory_caps_each_gpu_only_below_its_room():
    p = plan_placement(_gpus(2, free=100 * GIB), 2 * GIB, GIB, max_gpu_memory_gib=40)
    assert p.max_memory == {0: 40 * GIB, 1: 40 * GIB}
    p = plan_placement(_gpus(2, free=10 * GIB), 2 * GIB, GIB, max_gpu_memory_gib=40)
    assert p.max_memory == {0: 7 * GIB, 1: 7 * GIB}
    with pytest.raises(QuantizeInputError, match="must be > 0"):
        plan_placement(_gpus(1), GIB, 0, max_gpu_memory_gib=0)


def test_a_model_that_does_not_fit_is_refused_before_loading_with_the_fixes():
    reserve = activation_reserve(LLAMA3_70B, 8, 1024, 2)  # the llama3-70b-fp8 recipe's calibration
    with pytest.raises(QuantizeInputError) as exc:
        plan_placement(_gpus(1), LLAMA3_70B_BF16, reserve)
    msg = str(exc.value)
    assert "does not fit the visible GPUs: 131.4 GiB of weights" in msg
    for fix in ("parallelism.tp", "calibration.batch_size", "max_gpu_memory_gib", "cpu_offload"):
        assert fix in msg


def test_llama3_70b_bf16_fits_two_h200s_and_four_h100s():
    reserve = activation_reserve(LLAMA3_70B, 8, 1024, 2)
    assert 7 * GIB < reserve < 8 * GIB  # 8 x 1024 tokens x (8 x 28672 + 2 x 128256) x 2 bytes
    two = plan_placement(_gpus(2), LLAMA3_70B_BF16, reserve)
    assert two.device_map == "auto" and sum(two.max_memory.values()) > LLAMA3_70B_BF16
    h100 = 81559 * 1024**2
    four = plan_placement([Gpu(i, "H100", h100, h100 - GIB) for i in range(4)], LLAMA3_70B_BF16, reserve)
    assert four.device_map == "auto" and set(four.max_memory) == {0, 1, 2, 3}


def test_cpu_offload_puts_what_does_not_fit_in_host_memory():
    p = plan_placement(_gpus(1), 10 * GIB, GIB, max_gpu_memory_gib=4, cpu_offload=True)
    assert p.device_map == "auto" and p.cpu_offload
    assert p.max_memory == {0: 4 * GIB, "cpu": 10 * GIB}
    assert "offloaded to the CPU" in " ".join(p.notes)
    with pytest.raises(QuantizeInputError, match="and host memory"):
        plan_placement(_gpus(1), 10 * GIB, GIB, max_gpu_memory_gib=4, cpu_offload=True, cpu_bytes=GIB)


def test_no_gpu_visible():
    with pytest.raises(QuantizeInputError, match="no CUDA device"):
        plan_placement([], GIB, 0)


def test_activation_reserve_counts_the_widest_layer_and_the_logits():
    dims = {"hidden_size": 2048, "intermediate_size": 8192, "vocab_size": 32000}
    assert activation_reserve(dims, 8, 512, 2) == 8 * 512 * (8 * 8192 + 2 * 32000) * 2
    assert activation_reserve(dims, 1, 512, 4, factor=1) == 512 * (8192 + 64000) * 4


def _write_safetensors(path, tensors: dict) -> None:
    """A safetensors file written by hand (header + zero bytes): only the header is read."""
    header, offset = {}, 0
    for name, (dtype, shape, item) in tensors.items():
        n = item
        for s in shape:
            n *= s
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def test_checkpoint_weight_bytes_in_the_calibration_dtype(tmp_path):
    _write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {"w": ("F32", [64, 32], 4)})
    _write_safetensors(
        tmp_path / "model-00002-of-00002.safetensors", {"b": ("BF16", [32], 2), "q": ("I8", [16, 16], 1)}
    )
    assert checkpoint_weight_bytes(tmp_path, "bfloat16") == (64 * 32 + 32) * 2 + 256
    assert checkpoint_weight_bytes(tmp_path, "float32") == (64 * 32 + 32) * 4 + 256
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pytorch_model.bin").write_bytes(b"\0" * 1000)
    (bin_dir / "config.json").write_text("{}")
    assert checkpoint_weight_bytes(bin_dir, "bfloat16") == 1000


@pytest.mark.parametrize(
    ("device_map", "expected"),
    [
        ({"": 0}, "cuda:0"),
        ({"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": 1, "lm_head": 1}, "cuda:0"),
        ({"model.layers.0": 0, "model.embed_tokens": 1, "lm_head": 1}, "cuda:1"),
        ({"model": 1, "lm_head": 0}, "cuda:1"),  # the embedding is inside "model"
        ({"model.embed_tokens": "cpu", "model.layers.0": 1, "model.layers.1": "cpu"}, "cuda:1"),
        ({"model.embed_tokens": "disk", "model.layers.0": "cpu"}, "cpu"),
        ({}, "cpu"),
        (None, "cpu"),
    ],
)
def test_inputs_go_to_the_embeddings_execution_device(device_map, expected):
    assert input_device(device_map, "model.embed_tokens") == expected


def test_devices_used_counts_top_level_entries():
    m = {"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": 1, "model.norm": "cpu", "lm_head": 1}
    assert devices_used(m) == {"cuda:0": 2, "cuda:1": 2, "cpu": 1}
    assert devices_used(None) == {}

"""PyTorch-backend kinds in the registry: typed metadata, resolve refusals (arch family, TensorRT-LLM version,
GPU count, memory = weights + KV estimate), gc keeping a checkpoint a kept serve config points at, and
AutoTuner caches handed only to a matching host (in the registry and in the image's selector)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from registry.api import (
    AutotunerCacheMetadata,
    HfCheckpointMetadata,
    HostFacts,
    InvalidInput,
    ServeConfigMetadata,
    parse_metadata,
)
from trtbuild.build import autotuner
from trtbuild.errors import InputError

GIB = 1 << 30
H100 = HostFacts(gpu_arch="sm90", gpu_count=1, gpu_mem_gib=80.0, trtllm_version="1.3.0rc26")
CKPT = HfCheckpointMetadata(
    build_key="sha256:" + "c" * 64,
    recipe_name="m",
    model_source="hf://org/m",
    model_revision="a" * 40,
    dtype="bfloat16",
    quant_format="fp8",
    kv_cache_quant="fp8",
    quant_algo="FP8",
    kv_cache_quant_algo="FP8",
    min_gpu_arch="sm89",
    architecture="LlamaForCausalLM",
    num_hidden_layers=32,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=8192,
    weights_bytes=8 * GIB,
    toolchain="trtllm-1.3.0rc26",
    toolchain_image="img",
    trtllm_version="1.3.0rc26",
    modelopt_version="0.47.0",
)


def serve_meta(checkpoint: str, **changes) -> ServeConfigMetadata:
    base = ServeConfigMetadata(
        build_key="sha256:" + "d" * 64,
        recipe_name="m",
        checkpoint=checkpoint,
        checkpoint_build_key=CKPT.build_key,
        trtllm_version="1.3.0rc26",
        llm_api_spec="1.3-main@00043967",
        llm_api_commit="0" * 40,
        gpu_arch="sm90",
        min_gpu_arch="sm89",
        tp=1,
        pp=1,
        max_batch_size=64,
        max_seq_len=8192,
        max_num_tokens=8192,
        quant_format="fp8",
        kv_cache_quant="fp8",
        model_source="hf://org/m",
        model_revision="a" * 40,
        toolchain_image="img",
        weights_bytes=CKPT.weights_bytes,
        kv_bytes_per_token=CKPT.kv_bytes_per_token(),
        kv_tokens=8192,
        kv_tokens_from="one sequence of max_seq_len",
    )
    return dataclasses.replace(base, **changes)


def _dir(tmp_path: Path, name: str, content: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(content)
    return d


def _publish(reg, tmp_path: Path, n: int = 0, **serve_changes):
    ckpt = reg.push(_dir(tmp_path, f"ckpt{n}", f'{{"n": {n}}}'), name="m-checkpoint", metadata=CKPT)
    meta = serve_meta(ckpt.hash, **serve_changes)
    cfg = reg.push(
        _dir(tmp_path, f"cfg{n}", json.dumps(serve_changes, default=str)),
        name="m",
        metadata=meta,
        tag="latest",
    )
    return ckpt, cfg


def test_typed_metadata_round_trips_and_refuses_foreign_records():
    meta = serve_meta("sha256:" + "e" * 64)
    assert parse_metadata("serve-config", meta.to_dict()) == meta
    assert parse_metadata("hf-checkpoint", CKPT.to_dict()) == CKPT
    with pytest.raises(InvalidInput, match="unknown field"):
        parse_metadata("hf-checkpoint", meta.to_dict())  # a serve config's fields are not a checkpoint's
    with pytest.raises(InvalidInput, match="must be an integer"):
        ServeConfigMetadata.from_dict({**meta.to_dict(), "tp": "2"})
    # 2 (K, V) x 32 layers x 8 KV heads x 128 x 1 byte (FP8)
    assert CKPT.kv_bytes_per_token() == 65536 and CKPT.kv_bytes_per_token("none") == 131072


@pytest.mark.parametrize("backend", ["local-sqlite", "s3-postgres"], indirect=True)
def test_resolve_a_serve_config_says_why_not(backend, tmp_path):
    reg = backend.open()
    _, cfg = _publish(reg, tmp_path)
    res = reg.resolve("m", H100, kind=ServeConfigMetadata.kind)
    assert res.best is not None and res.best.hash == cfg.hash and not res.rejected
    assert res.best.columns["quant_format"] == "fp8" and res.best.columns["tp"] == 1  # catalog columns filled
    cases = [
        (dataclasses.replace(H100, trtllm_version="1.3.0rc25"), "validated for 1.3.0rc26"),
        (dataclasses.replace(H100, gpu_arch="sm89"), "arch family"),
        (dataclasses.replace(H100, gpu_arch="sm80"), "needs sm89+"),
        (dataclasses.replace(H100, gpu_mem_gib=10.0), "GiB weights"),
    ]
    for host, words in cases:
        res = reg.resolve("m", host, kind=ServeConfigMetadata.kind)
        assert res.best is None and words in res.rejected[0][1], (host, res.rejected)
    # unknown GPU count and memory are noted; an unknown TensorRT-LLM runtime is refused (issue 11)
    unknown = reg.resolve(
        "m", HostFacts(gpu_arch="sm90", trtllm_version="1.3.0rc26"), kind=ServeConfigMetadata.kind
    )
    assert unknown.best is not None and any("unknown" in n for n in unknown.notes)
    from registry.api import InvalidInput

    with pytest.raises(InvalidInput, match="TensorRT-LLM version of the serving runtime is unknown"):
        reg.resolve("m", HostFacts(gpu_arch="sm90"), kind=ServeConfigMetadata.kind)


def test_resolve_counts_gpus_and_the_kv_estimate(tmp_path):
    from registry.api import Registry

    reg = Registry.open(f"sqlite:///{tmp_path / 'r.db'}", f"file://{tmp_path / 'store'}")
    _publish(reg, tmp_path, 0, tp=2)
    refused = reg.resolve("m", H100, kind=ServeConfigMetadata.kind)
    assert "needs 2 GPUs" in refused.rejected[0][1]
    # 2M tokens x 64 KiB = 128 GiB of FP8 KV on top of 8 GiB weights does not fit 80 GiB
    _publish(reg, tmp_path, 1, kv_tokens=1 << 21, kv_tokens_from="kv_cache_config.max_tokens")
    res = reg.resolve("m", dataclasses.replace(H100, gpu_count=2), kind=ServeConfigMetadata.kind)
    reasons = [r for _, r in res.rejected]
    assert res.best is not None and res.best.metadata.tp == 2  # the tp=2 one fits two GPUs
    assert any("128.0 GiB KV" in r and "kv_cache_config.max_tokens" in r for r in reasons), reasons


def test_gc_keeps_the_checkpoint_a_kept_serve_config_points_at(tmp_path):
    from registry.api import Registry

    reg = Registry.open(f"sqlite:///{tmp_path / 'r.db'}", f"file://{tmp_path / 'store'}")
    orphan = reg.push(
        _dir(tmp_path, "orphan", '{"o": 1}'),
        name="m-checkpoint",
        metadata=dataclasses.replace(CKPT, build_key="sha256:" + "f" * 64),
    )
    ckpt, cfg = _publish(reg, tmp_path)
    report = reg.gc(keep_last=0, grace_s=0)
    assert orphan.hash in report.deleted_artifacts
    assert ckpt.hash not in report.deleted_artifacts and cfg.hash not in report.deleted_artifacts
    assert reg.get(ckpt.hash).kind == HfCheckpointMetadata.kind


def test_autotuner_cache_is_handed_only_to_a_matching_host(tmp_path):
    from registry.api import Registry

    reg = Registry.open(f"sqlite:///{tmp_path / 'r.db'}", f"file://{tmp_path / 'store'}")
    _, cfg = _publish(reg, tmp_path)
    tuned = tmp_path / "tune"
    tuned.mkdir()
    (tuned / "autotuner_cache.json").write_text('{"cache": "h100"}')
    h100 = dict(gpu_name="NVIDIA H100 80GB HBM3", gpu_arch="sm90", trtllm_version="1.3.0rc26")
    art = autotuner.capture(reg, "m:latest", tuned, **h100)
    meta = art.metadata
    assert (meta.tp, meta.model, meta.quant_format) == (1, cfg.metadata.checkpoint, "fp8")
    hit, _ = autotuner.cache_for_host(reg, "m:latest", **h100)
    assert hit is not None and hit.hash == art.hash
    for change, words in (
        ({"gpu_name": "NVIDIA H200"}, "GPU NVIDIA H100 80GB HBM3 != host NVIDIA H200"),
        ({"trtllm_version": "1.3.0rc25"}, "TensorRT-LLM 1.3.0rc26 != host 1.3.0rc25"),
        ({"gpu_arch": None}, "SM arch of the host unknown"),
    ):
        hit, reasons = autotuner.cache_for_host(reg, "m:latest", **{**h100, **change})
        assert hit is None and any(words in r for r in reasons), reasons
    with pytest.raises(InputError, match="is for 1.3.0rc26"):
        autotuner.capture(reg, "m:latest", tuned, **{**h100, "trtllm_version": "1.3.0rc25"})
    assert [m.gpu_name for m, _ in autotuner.caches_for(reg, reg.get("m:latest"))] == [h100["gpu_name"]]
    assert reg.list(kind=AutotunerCacheMetadata.kind)[0].columns.get("gpu_name") == h100["gpu_name"]


@pytest.mark.parametrize(
    "smi_gpu, expect", [("NVIDIA H100 80GB HBM3, 9.0", "h100"), ("NVIDIA A100-SXM4-80GB, 8.0", None)]
)
def test_selector_in_the_image_sets_the_cache_only_for_its_gpu(tmp_path, smi_gpu, expect):
    from trtbuild.bake.pytorch import stage_caches

    src = tmp_path / "cache"
    src.mkdir()
    (src / "autotuner_cache.json").write_text("{}")
    meta = AutotunerCacheMetadata(
        gpu_name="NVIDIA H100 80GB HBM3",
        gpu_arch="sm90",
        trtllm_version="1.3.0rc26",
        tp=1,
        model="sha256:" + "0" * 64,
        quant_format="fp8",
        kv_cache_quant="fp8",
        cache_file="autotuner_cache.json",
    )
    stage_caches([(meta, src)], tmp_path / "autotuner")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho '{smi_gpu}'\necho '{smi_gpu}'\n")
    smi.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "TLLM_AUTOTUNER_CACHE_PATH": "/stale",
    }
    out = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "autotuner" / "select_autotuner_cache.py"),
            "sh",
            "-c",
            "echo ${TLLM_AUTOTUNER_CACHE_PATH:-unset}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if expect:
        assert out.endswith("nvidia-h100-80gb-hbm3-sm90/autotuner_cache.json")
    else:
        assert out == "unset", "a stale variable from the environment is dropped too"

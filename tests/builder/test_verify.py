"""The verify step refuses engines that do not match their recipe."""

from __future__ import annotations

import json

import pytest

from trtbuild.build.verify import VerifyFailed, verify_engine

EXPECT = {
    "trtllm_version": "1.1.0",
    "tp": 2,
    "pp": 1,
    "format": "fp8",
    "kv_cache": "fp8",
    "limits": {
        "max_batch_size": 8,
        "max_input_len": 128,
        "max_seq_len": 256,
        "max_num_tokens": 1024,
        "max_beam_width": 1,
    },
}


def _engine(tmp_path, **changes):
    d = tmp_path / "engine"
    d.mkdir()
    config = {
        "version": "1.1.0",
        "pretrained_config": {
            "architecture": "LlamaForCausalLM",
            "mapping": {"world_size": 2, "tp_size": 2, "pp_size": 1},
            "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"},
        },
        "build_config": dict(EXPECT["limits"]),
    }
    for dotted, value in changes.items():
        node = config
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    (d / "config.json").write_text(json.dumps(config))
    for rank in range(2):
        (d / f"rank{rank}.engine").write_bytes(b"plan" * 8)
    return d


def test_matching_engine_passes(tmp_path):
    report = verify_engine(_engine(tmp_path), EXPECT)
    assert report.ok and len(report.checks) >= 10


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"version": "1.0.0"}, "trtllm version"),
        ({"pretrained_config.mapping.tp_size": 1}, "mapping.tp_size"),
        ({"pretrained_config.quantization.quant_algo": "W4A16_AWQ"}, "quantization.quant_algo"),
        ({"pretrained_config.quantization.kv_cache_quant_algo": None}, "kv_cache_quant_algo"),
        ({"build_config.max_batch_size": 16}, "build_config.max_batch_size"),
    ],
)
def test_mismatch_is_refused(tmp_path, change, needle):
    with pytest.raises(VerifyFailed, match=needle):
        verify_engine(_engine(tmp_path, **change), EXPECT)


def test_missing_or_empty_rank_is_refused(tmp_path):
    d = _engine(tmp_path)
    (d / "rank1.engine").unlink()
    with pytest.raises(VerifyFailed, match="rank engines"):
        verify_engine(d, EXPECT)
    (d / "rank1.engine").write_bytes(b"")
    with pytest.raises(VerifyFailed, match="non-empty"):
        verify_engine(d, EXPECT)


def test_missing_config_is_refused(tmp_path):
    d = _engine(tmp_path)
    (d / "config.json").unlink()
    with pytest.raises(VerifyFailed, match="missing or not JSON"):
        verify_engine(d, EXPECT)

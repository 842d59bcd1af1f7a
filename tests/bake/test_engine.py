"""Engine facts and the limits a serving config may not exceed."""

from __future__ import annotations

import json

import pytest

from tests.bake.conftest import metadata_for
from trtbuild.bake.engine import check_metadata, check_runtime_limit, read_engine
from trtbuild.errors import InputError


def test_read_engine_takes_the_build_time_limits(engine_factory):
    info = read_engine(engine_factory(tp=2, pp=2, max_batch_size=32, max_beam_width=4))
    assert (info.tp, info.pp, info.world_size) == (2, 2, 4)
    assert (info.max_batch_size, info.max_beam_width, info.max_num_tokens, info.max_seq_len) == (
        32,
        4,
        8192,
        4096,
    )
    assert info.trtllm_version == "1.0.0"
    assert info.rank_files == ("rank0.engine", "rank1.engine", "rank2.engine", "rank3.engine")
    assert info.quant_algo == "FP8"


def test_missing_rank_file_is_refused(engine_factory):
    engine = engine_factory(tp=2)
    (engine / "rank1.engine").unlink()
    with pytest.raises(InputError, match=r"missing rank1\.engine \(tp=2 x pp=1 needs 2 ranks\)"):
        read_engine(engine)


def test_not_an_engine_directory(engine_factory, tmp_path):
    with pytest.raises(InputError, match="config.json: not found"):
        read_engine(tmp_path)
    engine = engine_factory()
    (engine / "config.json").write_text(json.dumps({"architecture": "LlamaForCausalLM"}))
    with pytest.raises(InputError, match="bake engines only"):
        read_engine(engine)


def test_metadata_must_describe_the_engine(engine_factory):
    info = read_engine(engine_factory())
    check_metadata(info, metadata_for())
    check_metadata(info, metadata_for(version="1.0"))  # same PEP 440 version
    with pytest.raises(InputError) as err:
        check_metadata(info, metadata_for(version="1.1.0", max_batch_size=128))
    assert "trtllm_version: registry says '1.1.0', config.json says '1.0.0'" in str(err.value)
    assert "max_batch_size: registry says 128, config.json says 64" in str(err.value)


def test_runtime_limits_default_to_and_stop_at_the_engine(engine_factory):
    info = read_engine(engine_factory(max_batch_size=64, max_beam_width=2))
    assert check_runtime_limit(info, "max_batch_size", None) == 64
    assert check_runtime_limit(info, "max_batch_size", 16) == 16
    with pytest.raises(InputError) as err:
        check_runtime_limit(info, "max_batch_size", 128)
    assert err.value.exit_code == 2
    assert "rebuild with limits.max_batch_size = 128 in the recipe" in str(err.value)
    with pytest.raises(InputError, match="max_beam_width=4 exceeds"):
        check_runtime_limit(info, "max_beam_width", 4)
    with pytest.raises(InputError, match="must be >= 1"):
        check_runtime_limit(info, "max_batch_size", 0)

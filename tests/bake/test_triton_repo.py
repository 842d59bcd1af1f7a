"""Triton model repository values and filling, checked against the engine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.bake.conftest import FIXTURES
from trtbuild.bake.engine import read_engine
from trtbuild.bake.fill_model_repo import leftover_placeholders
from trtbuild.bake.triton_repo import (
    FILL_SCRIPT,
    TritonOptions,
    fill_locally,
    substitutions,
    write_fill_inputs,
)
from trtbuild.errors import InputError

TEMPLATES_DIR = FIXTURES / "base" / "all_models" / "inflight_batcher_llm"


def values(info, **kw):
    return substitutions(info, TritonOptions(**kw), engine_path="/e", tokenizer_path="/t")


def test_values_follow_the_engine(engine_factory):
    info = read_engine(engine_factory(max_batch_size=48, max_beam_width=4))
    v = values(info)
    assert (v["triton_max_batch_size"], v["max_beam_width"]) == ("48", "4")
    assert v["triton_backend"] == "tensorrtllm" and v["kv_cache_free_gpu_mem_fraction"] == "0.9"
    assert values(info, triton_max_batch_size=8, max_beam_width=1)["triton_max_batch_size"] == "8"


def test_batch_larger_than_the_engine_is_refused_with_the_recipe_field(engine_factory):
    info = read_engine(engine_factory(max_batch_size=48))
    with pytest.raises(InputError) as err:
        values(info, triton_max_batch_size=256)
    assert err.value.exit_code == 2
    assert "max_batch_size=256 exceeds what the engine was built for (max_batch_size=48)" in str(err.value)
    assert "limits.max_batch_size = 256" in str(err.value)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"batching_strategy": "static"}, "--batching-strategy: 'static' must be one of inflight_fused"),
        ({"batch_scheduler_policy": "fifo"}, "--batch-scheduler-policy: 'fifo' must be one of"),
        ({"kv_cache_free_gpu_mem_fraction": 1.5}, r"must be in \(0.0, 1.0\]"),
        ({"max_queue_size": -1}, "max_queue_size: '-1' must be >= 0"),
        ({"instance_count": 0}, "--instance-count: '0' must be >= 1"),
        ({"extra": {"engine_dir": "/elsewhere"}}, "trtbuild sets it from the engine"),
        ({"extra": {"bad-name": "1"}}, "not a template parameter name"),
        ({"extra": {"decoding_mode": 'x"y'}}, "may not contain quotes"),
    ],
)
def test_bad_runtime_options(engine_factory, kw, message):
    with pytest.raises(InputError, match=message):
        values(read_engine(engine_factory()), **kw)


TRITON_PARAMS = [
    # (NAME=VALUE, the message naming the parameter and the problem)
    ("batching_strategy=static", "--triton-param batching_strategy: 'static' must be one of"),
    ("batch_scheduler_policy=fifo", "--triton-param batch_scheduler_policy: 'fifo' must be one of"),
    ("enable_kv_cache_reuse=yes", "--triton-param enable_kv_cache_reuse: 'yes' must be one of True, true"),
    ("exclude_input_in_output=on", "--triton-param exclude_input_in_output: 'on' must be one of"),
    ("decoupled_mode=TRUE", "--triton-param decoupled_mode: 'TRUE' must be one of true, True, 1"),
    (
        "kv_cache_free_gpu_mem_fraction=0",
        r"--triton-param kv_cache_free_gpu_mem_fraction: '0' must be in \(0.0",
    ),
    (
        "max_tokens_in_paged_kv_cache=lots",
        "--triton-param max_tokens_in_paged_kv_cache: 'lots' must be an integer",
    ),
    ("max_attention_window_size=4096;8192", "must be integers separated by commas"),
    ("decoding_mode=greedy", "--triton-param decoding_mode: 'greedy' must be one of top_k"),
    ("logits_datatype=FP32", "--triton-param logits_datatype: 'FP32' must be one of TYPE_FP32"),
    ("gpu_weights_percent=1.5", "--triton-param gpu_weights_percent: '1.5' must be in [0.0, 1.0]"),
    ("enable_kv_cache_resue=true", "not a parameter of the inflight_batcher_llm templates"),
]


@pytest.mark.parametrize("param,message", TRITON_PARAMS, ids=[p.split("=")[0] for p, _ in TRITON_PARAMS])
def test_triton_params_get_the_checks_of_dedicated_options(engine_factory, param, message):
    name, _, value = param.partition("=")
    with pytest.raises(InputError) as err:
        values(read_engine(engine_factory()), extra={name: value})
    assert err.value.exit_code == 2
    assert message in str(err.value) or re.search(message, str(err.value)), str(err.value)


def test_valid_triton_params_are_written_as_given(engine_factory):
    extra = {
        "enable_kv_cache_reuse": "true",
        "batch_scheduler_policy": "max_utilization",
        "batching_strategy": "v1",
        "max_attention_window_size": "4096,8192",
        "decoding_mode": "top_k_top_p",
        "new_template_placeholder": "TYPE_FP16",  # a placeholder of a newer template: plain values pass
    }
    v = values(read_engine(engine_factory()), extra=extra)
    assert {k: v[k] for k in extra} == extra


def test_leftover_placeholders():
    assert leftover_placeholders('parameters { key: "a" value: { string_value: "${a}" } }') == []
    assert leftover_placeholders("max_batch_size: ${triton_max_batch_size}\ndata_type: ${x}") == [
        "triton_max_batch_size",
        "x",
    ]


def test_unknown_required_placeholder_names_the_flag(engine_factory, tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    cfg = templates / "tensorrt_llm" / "config.pbtxt"
    cfg.write_text(cfg.read_text() + 'input [ { name: "x" data_type: ${new_tensor_type} dims: [ 1 ] } ]\n')
    info = read_engine(engine_factory())
    with pytest.raises(
        InputError, match=r"tensorrt_llm/config.pbtxt needs \$\{new_tensor_type\}.*--triton-param"
    ):
        fill_locally(templates, values(info), tmp_path / "out1")
    filled = fill_locally(templates, values(info, extra={"new_tensor_type": "TYPE_FP16"}), tmp_path / "out2")
    assert len(filled) == 4
    assert "data_type: TYPE_FP16" in (tmp_path / "out2" / "tensorrt_llm" / "config.pbtxt").read_text()


def test_missing_templates_dir(engine_factory, tmp_path):
    with pytest.raises(InputError, match="not an inflight_batcher_llm template directory"):
        fill_locally(tmp_path, values(read_engine(engine_factory())), tmp_path / "out")


def test_fill_script_runs_standalone(engine_factory, tmp_path):
    """The script the image runs at build time: python3 with the standard library only."""
    values_json = write_fill_inputs(tmp_path / "fill", values(read_engine(engine_factory())))
    script = tmp_path / "fill" / FILL_SCRIPT.name
    ok = subprocess.run(
        [sys.executable, "-I", str(script), str(TEMPLATES_DIR), str(values_json), str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "max_batch_size: 64" in (tmp_path / "r" / "ensemble" / "config.pbtxt").read_text()
    bad = subprocess.run(
        [sys.executable, "-I", str(script), str(tmp_path), str(values_json), str(tmp_path / "r2")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "fill_model_repo: error:" in bad.stderr and "Traceback" not in bad.stderr

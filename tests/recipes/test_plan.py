"""The plan: content keys, step order and argv validity against the recorded TensorRT-LLM CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import RECIPES
from tests.recipes.helpers import DELETE, write_recipe
from trtbuild.build.plan import plan_recipe
from trtbuild.cli import cli
from trtbuild.recipe import cli_spec
from trtbuild.recipe.load import is_pins_file

# engine recipes (the PyTorch-backend examples are planned in test_plan_pytorch.py)
EXAMPLES = sorted(p for p in RECIPES.glob("*.toml") if not is_pins_file(p) and "pytorch" not in p.stem)
TOOL_OF_KIND = {"quantize": "quantize", "convert": "convert_checkpoint", "build": "trtllm-build"}


def test_five_examples_exist():
    names = {p.stem for p in EXAMPLES}
    assert {"llama3-70b-fp8", "llama3-8b-int4-awq", "llama3-8b-int8-sq", "llama3-8b-bf16"} <= names
    assert any(n.startswith(("mistral", "qwen")) for n in names)


@pytest.mark.parametrize("recipe", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_emitted_flag_is_valid_for_the_pinned_release(recipe):
    plan = plan_recipe(recipe)
    family = plan.recipe.toolchain.cli_spec
    container_steps = [s for s in plan.steps if s.image]
    assert [s.kind for s in plan.steps][0] == "fetch" and [s.kind for s in plan.steps][-2:] == [
        "verify",
        "publish",
    ]
    assert len(container_steps) == 2
    for step in container_steps:
        argv = step.argv
        if step.kind == "quantize":
            assert argv[:3] == ["python3", "-m", "trtbuild.quantize"]
            flags = argv[3:]
        elif step.kind == "convert":
            assert argv[1] == plan.recipe.toolchain.convert_scripts["LlamaForCausalLM"]
            flags = argv[2:]
        else:
            assert argv[0] == "trtllm-build"
            flags = argv[1:]
        assert cli_spec.check_argv(flags, TOOL_OF_KIND[step.kind], family) == []
        names = [f for f in flags if f.startswith("--")]
        assert len(names) == len(set(names)), f"duplicate flag in {step.kind}: {names}"


def test_bf16_recipe_uses_convert_and_quantized_use_quantize():
    kinds = {p.stem: [s.kind for s in plan_recipe(p).steps] for p in EXAMPLES}
    assert kinds["llama3-8b-bf16"][1] == "convert"
    assert kinds["llama3-70b-fp8"][1] == "quantize"


def test_fp8_70b_argv_carries_recipe_values():
    plan = plan_recipe(RECIPES / "llama3-70b-fp8.toml")
    q = plan.step("quantize").argv
    assert q[q.index("--qformat") + 1] == "fp8" and q[q.index("--kv_cache_dtype") + 1] == "fp8"
    assert q[q.index("--tp_size") + 1] == "4"
    b = plan.step("build").argv
    assert b[b.index("--max_batch_size") + 1] == "64" and b[b.index("--workers") + 1] == "4"
    assert b[b.index("--use_fp8_context_fmha") + 1] == "enable"
    assert plan.step("build").gpus == 4


def _keys(path: Path) -> dict[str, str]:
    plan = plan_recipe(path)
    return {"checkpoint": plan.checkpoint_key, "engine": plan.engine_key}


def test_keys_ignore_formatting_comments_order_and_name(tmp_path):
    a = write_recipe(tmp_path, name="a.toml")
    b = tmp_path / "b.toml"
    b.write_text("""name = "renamed"   # names do not change keys
# same recipe, other layout
[target]
toolchain = "trtllm-1.1.0"   # pinned
gpu_arch = "sm90"
[build]
gemm_plugin = "auto"
[limits]
max_seq_len = 2048
max_input_len = 1024
max_batch_size = 8
[parallelism]
pp = 1
tp = 1
[quantization]
kv_cache = "fp8"
format = "fp8"
[model]
dtype = "bfloat16"
revision = "main"
source = "hf://meta-llama/Meta-Llama-3-8B-Instruct"
""")
    assert _keys(a) == _keys(b)


ENGINE_ONLY = [
    {"limits.max_batch_size": 16},
    {"limits.max_input_len": 512},
    {"limits.max_seq_len": 4096},
    {"limits.max_num_tokens": 4096},
    {"limits.max_beam_width": 2},
    {"build.gemm_plugin": "disable"},
    {"build.use_paged_context_fmha": False},
    {"build.multiple_profiles": True},
    {"build.tokens_per_block": 64},
    {"build.extra_args": ["--log_level", "verbose"]},
]
BOTH = [
    {"quantization.format": "int8_sq", "quantization.kv_cache": "int8"},
    {"quantization.kv_cache": "none"},
    {"quantization.calibration.samples": 256},
    {"quantization.calibration.max_seq_len": 256},
    {"quantization.device": "cpu"},
    {"parallelism.tp": 2},
    {"model.dtype": "float16"},
    {"model.revision": "0123456789abcdef0123456789abcdef01234567"},
    {"model.source": "hf://meta-llama/Meta-Llama-3.1-8B-Instruct"},
    {"target.toolchain": "trtllm-1.0.0"},
]


@pytest.mark.parametrize("change", ENGINE_ONLY, ids=lambda c: next(iter(c)))
def test_build_only_changes_keep_the_checkpoint_key(tmp_path, change):
    base, changed = (
        _keys(write_recipe(tmp_path, name="a.toml")),
        _keys(write_recipe(tmp_path, change, "b.toml")),
    )
    assert changed["checkpoint"] == base["checkpoint"]
    assert changed["engine"] != base["engine"]


def test_gpu_placement_settings_reach_the_driver_and_offload_reaches_the_key(tmp_path):
    """quantization.max_gpu_memory_gib alone moves layers between GPUs: outside the key. CPU offload
    exports the offloaded layers on the CPU, which rounds some scales differently (bench/quantize_gpu/
    RESULTS.md), and the budget picks those layers: with offload both are in the key."""
    base = write_recipe(tmp_path, name="a.toml")
    capped = write_recipe(tmp_path, {"quantization.max_gpu_memory_gib": 70}, "b.toml")
    offload = {"quantization.max_gpu_memory_gib": 70, "quantization.cpu_offload": True}
    offloaded = write_recipe(tmp_path, offload, "c.toml")
    offloaded_less = write_recipe(tmp_path, {**offload, "quantization.max_gpu_memory_gib": 60}, "d.toml")
    assert _keys(capped) == _keys(base)
    assert len({_keys(p)["checkpoint"] for p in (base, offloaded, offloaded_less)}) == 3
    step = plan_recipe(offloaded).step("quantize")
    assert step.env["TRTBUILD_QUANT_MAX_GPU_MEMORY_GIB"] == "70.0"
    assert step.env["TRTBUILD_QUANT_CPU_OFFLOAD"] == "1"
    assert "TRTBUILD_QUANT_CPU_OFFLOAD" not in plan_recipe(capped).step("quantize").env


@pytest.mark.parametrize("change", BOTH, ids=lambda c: next(iter(c)))
def test_checkpoint_changes_change_both_keys(tmp_path, change):
    base, changed = (
        _keys(write_recipe(tmp_path, name="a.toml")),
        _keys(write_recipe(tmp_path, change, "b.toml")),
    )
    assert changed["checkpoint"] != base["checkpoint"]
    assert changed["engine"] != base["engine"]


def test_arch_changes_engine_key_only(tmp_path):
    base = _keys(write_recipe(tmp_path, name="a.toml"))
    changed = _keys(write_recipe(tmp_path, {"target.gpu_arch": "sm89"}, "b.toml"))
    assert changed["checkpoint"] == base["checkpoint"] and changed["engine"] != base["engine"]


def test_local_checkpoint_is_keyed_by_content(tmp_path, llama_config_dir):
    recipe = write_recipe(tmp_path, {"model.source": f"file://{llama_config_dir}", "model.revision": DELETE})
    first = _keys(recipe)
    assert _keys(recipe) == first
    (llama_config_dir / "extra.json").write_text("{}")
    assert _keys(recipe)["checkpoint"] != first["checkpoint"]


def test_calibration_file_is_keyed_by_content(tmp_path):
    calib = tmp_path / "calib.jsonl"
    calib.write_text('{"text": "hello"}\n')
    recipe = write_recipe(tmp_path, {"quantization.calibration.dataset": "calib.jsonl"})
    first = _keys(recipe)
    plan = plan_recipe(recipe)
    q = plan.step("quantize")
    assert q.argv[q.argv.index("--calib_dataset") + 1] == "/trtbuild/calib/calib.jsonl"
    assert any(m.source == calib.resolve() and m.read_only for m in q.mounts)
    calib.write_text('{"text": "hello world"}\n')
    assert _keys(recipe)["checkpoint"] != first["checkpoint"]


def test_plan_json_shape():
    result = CliRunner().invoke(cli, ["plan", str(RECIPES / "llama3-70b-fp8.toml"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"recipe", "checkpoint_key", "engine_key", "steps"} <= set(data)
    for step in data["steps"]:
        assert {"name", "kind", "key", "image", "argv", "mounts"} <= set(step)
        assert step["key"].startswith("sha256:")
    assert data["engine_key"] == data["steps"][2]["key"]
    assert data["pinned"] is False and len(data["floating"]) == 2
    # every command prints JSON through one helper: indented, keys sorted
    assert result.output == json.dumps(data, indent=2, sort_keys=True) + "\n"


def test_model_mount_is_read_only_and_outputs_writable():
    plan = plan_recipe(RECIPES / "llama3-70b-fp8.toml")
    mounts = {m.target: m for m in plan.step("quantize").mounts}
    assert mounts["/trtbuild/model"].read_only and not mounts["/trtbuild/checkpoint"].read_only
    build_mounts = {m.target: m for m in plan.step("build").mounts}
    assert build_mounts["/trtbuild/checkpoint"].read_only and not build_mounts["/trtbuild/engine"].read_only


def test_plan_shows_the_limits_the_engine_will_have(tmp_path, llama_config_dir):
    recipe = write_recipe(
        tmp_path,
        {
            "model.source": f"file://{llama_config_dir}",
            "model.revision": DELETE,
            "limits.max_batch_size": 1,
            "limits.max_seq_len": DELETE,
            "limits.max_input_len": 4096,
            "limits.max_num_tokens": 16384,
        },
    )
    data = plan_recipe(recipe).to_dict()
    # config.json at hand: max_position_embeddings 8192 -> max_seq_len 8192; tokens capped at 1 × 8192
    assert data["engine_limits"] == {
        "max_batch_size": 1,
        "max_input_len": 4096,
        "max_seq_len": 8192,
        "max_num_tokens": 8192,
        "opt_num_tokens": 1,
        "max_beam_width": 1,
    }
    assert {c["field"] for c in data["builder_changes"]} >= {"max_seq_len", "max_num_tokens"}
    result = CliRunner().invoke(cli, ["plan", str(recipe)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (
        "trtllm-build saves max_num_tokens = 8192 (recipe: 16384): capped at max_batch_size × max_seq_len"
        in text
    )
    assert "trtllm-build saves max_seq_len = 8192 (unset): deduced from max_position_embeddings" in text


def test_plan_says_when_max_seq_len_is_deduced_later(tmp_path):
    recipe = write_recipe(tmp_path, {"limits.max_seq_len": DELETE, "limits.max_batch_size": 1})
    plan = plan_recipe(recipe)
    assert plan.to_dict()["engine_limits"]["max_seq_len"] is None
    result = CliRunner().invoke(cli, ["plan", str(recipe)])
    assert "trtllm-build deduces max_seq_len" in " ".join(result.output.split())

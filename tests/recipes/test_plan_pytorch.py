"""The plan of a backend = "pytorch" recipe: steps, keys independent of TP/PP, serve options and the target
GPU for the checkpoint, and a serve config whose change never re-runs the quantization."""

from __future__ import annotations

import json
from pathlib import Path

import tomli_w
from click.testing import CliRunner

from tests.conftest import RECIPES
from tests.recipes.helpers import DELETE, recipe_dict
from trtbuild.build.plan import plan_recipe
from trtbuild.cli import cli
from trtbuild.quantize import parse_argv

BASE = {
    "parallelism": DELETE,
    "limits": DELETE,
    "build": DELETE,
    "target.toolchain": "trtllm-1.3.0rc26",
    "target.backend": "pytorch",
    "serve": {"tensor_parallel_size": 1, "max_batch_size": 32},
}


def _keys(tmp_path: Path, changes: dict) -> tuple[str, str]:
    path = tmp_path / "r.toml"
    path.write_text(tomli_w.dumps(recipe_dict({**BASE, **changes})))
    plan = plan_recipe(path, workdir=tmp_path / "work")
    return plan.checkpoint_key, plan.serve_config_key


def test_example_plan_steps_and_quantize_argv():
    plan = plan_recipe(RECIPES / "llama3-8b-fp8-pytorch.toml")
    assert [s.name for s in plan.steps] == [
        "fetch",
        "quantize",
        "verify",
        "publish-checkpoint",
        "serve-config",
        "publish",
    ]
    q = plan.step("quantize")
    assert q.image == plan.pins.image and q.argv[:3] == ["python3", "-m", "trtbuild.quantize"]
    flags = q.argv[3:]
    assert (
        plan.recipe.toolchain.cli_spec is None
    )  # no quantize.py run: the driver's own parser reads the argv
    assert parse_argv(flags, env={}).export_format == "hf"
    assert flags[flags.index("--export_format") + 1] == "hf"
    assert "--tp_size" not in flags and "tp" not in q.params and q.params["export"] == "hf"
    assert [s.image for s in plan.steps if s.name != "quantize"] == [None] * 5  # everything else on the host
    assert plan.step("verify").params["expect"] == {
        "quantized": True,
        "quant_algo": "FP8",
        "kv_cache_quant_algo": "FP8",
        "group_size": None,
    }


def test_serve_changes_keep_the_checkpoint_key(tmp_path):
    ckpt, serve = _keys(tmp_path, {})
    for change in (
        {"serve": {"tensor_parallel_size": 2, "max_batch_size": 32}},
        {"serve": {"max_batch_size": 64, "kv_cache_config": {"free_gpu_memory_fraction": 0.7}}},
        {"target.gpu_arch": "sm89"},
    ):
        ckpt2, serve2 = _keys(tmp_path, change)
        assert ckpt2 == ckpt, change
        assert serve2 != serve, change


def test_quantization_changes_change_both_keys(tmp_path):
    ckpt, serve = _keys(tmp_path, {})
    ckpt2, serve2 = _keys(tmp_path, {"quantization.format": "int4_awq", "quantization.kv_cache": "none"})
    assert ckpt2 != ckpt and serve2 != serve


def test_toml_layout_does_not_change_keys(tmp_path):
    first = _keys(tmp_path, {})
    path = tmp_path / "r.toml"
    path.write_text("# comment\n" + tomli_w.dumps(recipe_dict({**BASE, "name": "other-name"})))
    plan = plan_recipe(path, workdir=tmp_path / "work")
    assert (plan.checkpoint_key, plan.serve_config_key) == first


def test_unquantized_checkpoint_is_packaged_on_the_host(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(
        tomli_w.dumps(recipe_dict({**BASE, "quantization": {"format": "none", "kv_cache": "none"}}))
    )
    plan = plan_recipe(path, workdir=tmp_path / "work")
    package = plan.steps[1]
    assert package.name == "package" and package.image is None and package.argv is None
    assert plan.step("verify").params["expect"]["quantized"] is False


def test_plan_json_names_the_backend_and_both_keys():
    result = CliRunner().invoke(cli, ["plan", str(RECIPES / "llama3-8b-fp8-pytorch.toml"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["backend"] == "pytorch"
    assert data["checkpoint_key"] == data["steps"][1]["key"]
    assert data["serve_config_key"] == data["steps"][4]["key"]
    assert data["steps"][4]["inputs"] == [data["checkpoint_key"]]


def test_matrix_lists_pytorch_recipes_by_their_serve_config_key():
    result = CliRunner().invoke(cli, ["matrix", str(RECIPES / "llama3-8b-fp8-pytorch.toml"), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["include"]
    assert row["backend"] == "pytorch" and row["gpus"] == 1

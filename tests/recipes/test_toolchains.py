"""Toolchain pins: the sourced facts of each release, and which releases can build engines at all."""

from __future__ import annotations

import pytest

from tests.conftest import RECIPES
from tests.recipes.helpers import write_recipe
from trtbuild.errors import RecipeError, ToolchainError
from trtbuild.recipe import cli_spec
from trtbuild.recipe.load import load_recipe
from trtbuild.recipe.toolchain import builds_engines, load_toolchains

PINS = load_toolchains(RECIPES / "toolchains.toml")


def test_engine_toolchains_up_to_1_2_1_and_the_last_rc():
    engines = {n for n, tc in PINS.items() if tc.builds_engines}
    assert engines == {"trtllm-0.21.0", "trtllm-1.0.0", "trtllm-1.1.0", "trtllm-1.2.1", "trtllm-1.3.0rc20"}
    assert all(PINS[n].cli_spec is None for n in set(PINS) - engines)  # later releases: no trtllm-build


def test_1_2_1_carries_only_sourced_facts():
    tc = PINS["trtllm-1.2.1"]
    assert tc.image == "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"
    assert tc.base_image == "nvcr.io/nvidia/pytorch:25.12-py3"
    assert tc.triton_base_image == "nvcr.io/nvidia/tritonserver:25.12-py3"
    assert (tc.pytorch_version, tc.transformers_version) == ("2.9.1", "4.57.3")
    # not stated anywhere we can read: left unset, never guessed
    assert (tc.digest, tc.modelopt_version, tc.tensorrt_version, tc.cuda_version, tc.min_driver) == (
        None,
    ) * 5
    rc = PINS["trtllm-1.3.0rc20"]
    assert rc.image.endswith("release:1.3.0rc20") and rc.base_image is None and rc.digest is None


@pytest.mark.parametrize("name", sorted(n for n, tc in PINS.items() if tc.builds_engines))
def test_each_pin_names_the_spec_of_its_release(name):
    tc = PINS[name]
    assert tc.trtllm_version in cli_spec.info(tc.spec_family).releases
    assert cli_spec.family_for_version(tc.trtllm_version) == tc.cli_spec


@pytest.mark.parametrize(
    "version,engines",
    [
        ("0.21.0", True),
        ("1.2.1", True),
        ("1.3.0rc19", True),
        ("1.3.0rc20", True),
        ("1.3.0rc21", False),
        ("1.3.0", False),
        ("1.4.0", False),
    ],
)
def test_the_engine_path_ends_with_1_3_0rc20(version, engines):
    assert builds_engines(version) is engines


POST_RC20 = """
[toolchain."trtllm-1.3.0"]
trtllm_version = "1.3.0"
image = "nvcr.io/nvidia/tensorrt-llm/release:1.3.0"
supported_archs = ["sm90"]
"""


def test_engine_recipe_on_a_release_without_trtllm_build_is_refused(tmp_path):
    pins = tmp_path / "toolchains.toml"
    pins.write_text(POST_RC20)
    tc = load_toolchains(pins)["trtllm-1.3.0"]
    assert not tc.builds_engines and tc.cli_spec is None
    recipe = write_recipe(tmp_path, {"target.toolchain": "trtllm-1.3.0", "target.backend": "engine"})
    with pytest.raises(RecipeError) as err:
        load_recipe(recipe, load_toolchains(pins))
    (issue,) = [i for i in err.value.issues if i.field == "target.backend"]
    text = issue.render()
    assert "(TensorRT-LLM 1.3.0) has no trtllm-build" in text and "removed after 1.3.0rc20" in text
    assert "1.2.1" in text and 'backend = "pytorch"' in text
    assert {i.field for i in err.value.issues} == {"target.backend"}  # no engine rule runs against it


@pytest.mark.parametrize(
    "body,needle",
    [
        (POST_RC20 + 'cli_spec = "1.3"\n', "has no trtllm-build"),
        (POST_RC20.replace("1.3.0", "1.2.1"), "builds engines; name its recorded CLI spec"),
        (POST_RC20.replace('"1.3.0"\nimage', '"1.3.x"\nimage'), "must be a TensorRT-LLM version"),
        (
            POST_RC20.replace("1.3.0", "1.2.1") + 'cli_spec = "1.x"\n',
            "must be one of 0.21, 1.0, 1.1, 1.2, 1.3",
        ),
    ],
)
def test_pin_facts_that_contradict_the_release_are_refused(tmp_path, body, needle):
    pins = tmp_path / "toolchains.toml"
    pins.write_text(body)
    with pytest.raises(ToolchainError, match=needle):
        load_toolchains(pins)

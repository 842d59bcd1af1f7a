"""Every command line `plan` can emit parses with the recorded CLI of its toolchain, and no recipe that
validates trips a check trtllm-build's main() makes before building.

The generated matrix: every pinned toolchain × quantization format × KV cache × tp ∈ {1, 2, 8}, each with
no [build] switch and with each switch at each of its values (one at a time). Every recipe is validated;
for each one that validates, the planned trtllm-build, convert_checkpoint.py and quantize argv are parsed
by a real argparse parser built from the toolchain's recorded spec (the toolchain double's parser
builder, run in-process: no Docker), and the recorded main() rules are evaluated on the parsed
namespace. Refused recipes must be refused for a stated reason, never because trtbuild emits a bad flag.
"""

from __future__ import annotations

import sys
import tomllib
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any, get_args

import pytest

from tests.conftest import RECIPES
from tests.recipes.helpers import recipe_dict
from tests.toolchain_double.fixture import DOUBLE_SRC
from trtbuild.build.plan import make_plan, plan_recipe
from trtbuild.recipe import cli_spec
from trtbuild.recipe.checks import check_recipe
from trtbuild.recipe.engine_config import Switches, builder_switches, parser_switches
from trtbuild.recipe.load import LoadedRecipe, is_pins_file
from trtbuild.recipe.schema import BUILD_SWITCH_FLAGS, Build, Recipe
from trtbuild.recipe.toolchain import load_toolchains

sys.path.insert(0, str(DOUBLE_SRC))
from trtllm_double.cli import main_rule_errors, parser_from  # noqa: E402

TOOLCHAINS = load_toolchains(RECIPES / "toolchains.toml")
ENGINE_TOOLCHAINS = sorted(n for n, tc in TOOLCHAINS.items() if tc.builds_engines)
FORMATS = ("none", "fp8", "int8_sq", "int4_awq")
KV_CACHES = ("none", "fp8", "int8")
TPS = (1, 2, 8)
TOOL_OF_STEP = {"build": "trtllm-build", "convert": "convert_checkpoint", "quantize": "quantize"}
EXAMPLES = sorted(  # the engine-backend examples (a pytorch recipe runs no trtllm-build)
    p
    for p in RECIPES.glob("*.toml")
    if not is_pins_file(p) and tomllib.loads(p.read_text("utf-8"))["target"].get("backend") != "pytorch"
)
# the values each switch is tried with (Literal choices, both booleans, representative numbers)
NUMERIC_VALUES = {"tokens_per_block": (16, 64, 128), "opt_num_tokens": (1, 256)}


def _switch_values(name: str) -> list[Any]:
    if name in NUMERIC_VALUES:
        return list(NUMERIC_VALUES[name])
    annotation = Build.model_fields[name].annotation
    literals = [v for arg in get_args(annotation) for v in get_args(arg)] or list(get_args(annotation))
    if literals and all(isinstance(v, str) for v in literals):
        return literals
    return [True, False]


SWITCH_VARIANTS: list[dict[str, Any]] = [{}] + [
    {f"build.{name}": value} for name in BUILD_SWITCH_FLAGS for value in _switch_values(name)
]


@cache
def parser(family: str, tool: str):
    return parser_from(cli_spec.raw_spec(family)["tools"][tool]["flags"], tool)


def _flags_of(step) -> list[str]:
    argv = step.argv
    if step.kind == "quantize":
        assert argv[1:3] == ["-m", "trtbuild.quantize"]
        return argv[3:]
    return argv[2:] if step.kind == "convert" else argv[1:]


@cache
def parse(family: str, tool: str, flags: tuple[str, ...]) -> list[str]:
    """Parse ``flags`` as the real ``tool`` would; for trtllm-build, the main() rules they trip."""
    try:
        args = parser(family, tool).parse_args(list(flags))
    except SystemExit:
        pytest.fail(f"{tool} ({family}) rejects {list(flags)}")
    return main_rule_errors(args, cli_spec.raw_spec(family)["main_rules"]) if tool == "trtllm-build" else []


def _check_plan(plan, family: str) -> None:
    """Parse every emitted argv as the real tool would; evaluate main()'s rules on the build's namespace."""
    for step in plan.steps:
        if step.kind in TOOL_OF_STEP:
            flags = tuple(_flags_of(step))
            assert parse(family, TOOL_OF_STEP[step.kind], flags) == [], flags
            assert cli_spec.broken_main_rules(list(flags), family) == []


def _no_ignored_switch(recipe: Recipe, family: str) -> None:
    """A recipe that validates asks for no switch the builder overrides (format/KV-dependent rules)."""
    from trtbuild.recipe.engine_config import KV_ALGO_OF_CACHE, QUANT_ALGO_OF_FORMAT, Checkpoint

    explicit = {n: getattr(recipe.build, n) for n in Switches.__dataclass_fields__}
    ckpt = Checkpoint(
        recipe.model.architecture,
        QUANT_ALGO_OF_FORMAT[recipe.quantization.format],
        KV_ALGO_OF_CACHE[recipe.quantization.kv_cache],
        recipe.parallelism.tp,
        None,
        None,
    )
    _, overrides = builder_switches(parser_switches(explicit, family), ckpt, 90)
    assert not [o for o in overrides if explicit.get(o.field) is not None], overrides


@pytest.mark.parametrize("toolchain", ENGINE_TOOLCHAINS)
def test_every_plannable_argv_parses_and_passes_main(toolchain, tmp_path):
    tc = TOOLCHAINS[toolchain]
    family = tc.spec_family
    outcomes: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    for fmt in FORMATS:
        for kv in KV_CACHES:
            for tp in TPS:
                for variant in SWITCH_VARIANTS:
                    changes = {
                        "target.toolchain": toolchain,
                        "quantization.format": fmt,
                        "quantization.kv_cache": kv,
                        "parallelism.tp": tp,
                        "model.architecture": "LlamaForCausalLM",
                        **variant,
                    }
                    recipe = Recipe.model_validate(recipe_dict(changes))
                    problems = check_recipe(recipe, TOOLCHAINS, None, tmp_path)
                    if problems:
                        outcomes["refused"] += 1
                        for p in problems:  # every refusal is a stated recipe rule, never a flag of ours
                            assert "is not a flag" not in p.message and p.fix, p
                            refusals[p.field] += 1
                        continue
                    loaded = LoadedRecipe(Path(tmp_path / "r.toml"), recipe, tc, None)
                    plan = make_plan(loaded, workdir=tmp_path)
                    _check_plan(plan, family)
                    _no_ignored_switch(recipe, family)
                    outcomes["planned"] += 1
    # the matrix exercises both sides: most combinations plan, the known-bad ones are refused
    total = len(FORMATS) * len(KV_CACHES) * len(TPS) * len(SWITCH_VARIANTS)
    assert outcomes["planned"] + outcomes["refused"] == total
    assert outcomes["planned"] > total // 2
    assert refusals["quantization.kv_cache"] and refusals["build.use_fp8_context_fmha"]
    assert refusals["build.multiple_profiles"] == 0  # opt_num_tokens and multiple_profiles never meet here


def test_main_rule_combinations_are_refused_not_planned(tmp_path):
    """The two recorded main() rules, set up through the recipe: validate refuses both."""
    for changes in (
        {"build.multiple_profiles": True, "build.opt_num_tokens": 128},
        {"build.gather_context_logits": True, "build.extra_args": ["--max_draft_len", "2"]},
    ):
        recipe = Recipe.model_validate(recipe_dict({"target.toolchain": "trtllm-1.2.1", **changes}))
        fields = {p.field for p in check_recipe(recipe, TOOLCHAINS, None, tmp_path)}
        assert fields & {"build.multiple_profiles", "build.gather_context_logits"}, fields


@pytest.mark.parametrize("recipe", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_recipes_argv_parse(recipe):
    plan = plan_recipe(recipe)
    _check_plan(plan, plan.recipe.toolchain.spec_family)
    _no_ignored_switch(plan.recipe.recipe, plan.recipe.toolchain.spec_family)

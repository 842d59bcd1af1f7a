"""What trtllm-build itself refuses or ignores, caught before a container starts.

- the cross-flag rules its ``main()`` raises on (recorded per release in the CLI spec's ``main_rules``);
- explicit [build] switches its builder overrides for this checkpoint (``engine_config.builder_switches``):
  such a recipe would build, but not what it says.
Each problem names the recipe field, the reason and the fix.
"""

from __future__ import annotations

from collections.abc import Iterator

from registry.api import arch_number
from trtbuild.recipe import cli_spec
from trtbuild.recipe.engine_config import (
    KV_ALGO_OF_CACHE,
    QUANT_ALGO_OF_FORMAT,
    Checkpoint,
    Switches,
    builder_switches,
    parser_switches,
)
from trtbuild.recipe.model_config import ModelFacts
from trtbuild.recipe.problem import Problem
from trtbuild.recipe.schema import BUILD_SWITCH_FLAGS, Recipe, build_switch_flags
from trtbuild.recipe.toolchain import Toolchain

_FIELD_OF_FLAG = {flag: f"build.{name}" for name, flag in BUILD_SWITCH_FLAGS.items()}
_RULE_FIXES = {
    "multiple_profiles_with_opt_num_tokens": "drop build.opt_num_tokens, or set build.multiple_profiles "
    "= false",
    "gather_context_logits_with_draft_tokens": "drop the context logits or --max_draft_len; for the accepted "
    "tokens' logits use gather_generation_logits at runtime",
}


def check_build_rules(recipe: Recipe, tc: Toolchain, facts: ModelFacts | None) -> Iterator[Problem]:
    yield from _main_rules(recipe, tc)
    yield from _ignored_switches(recipe, tc, facts)


def _main_rules(recipe: Recipe, tc: Toolchain) -> Iterator[Problem]:
    argv = build_switch_flags(recipe.build) + list(recipe.build.extra_args)
    for rule in cli_spec.broken_main_rules(argv, tc.spec_family):
        given = cli_spec.parse_argv(argv)
        fields = list(
            dict.fromkeys(_FIELD_OF_FLAG.get(f, "build.extra_args") for f in rule.flags if f in given)
        )
        yield Problem(
            fields[0],
            f"{' together with '.join(fields)}: trtllm-build {tc.trtllm_version} refuses this before "
            f"building ({rule.raises})",
            _RULE_FIXES.get(rule.id, "remove one of them"),
            {f: given[f] for f in rule.flags if f in given},
        )


def _ignored_switches(recipe: Recipe, tc: Toolchain, facts: ModelFacts | None) -> Iterator[Problem]:
    q = recipe.quantization
    explicit = {name: getattr(recipe.build, name) for name in Switches.__dataclass_fields__}
    ckpt = Checkpoint(
        architecture=recipe.model.architecture or (facts.architecture if facts else None),
        quant_algo=QUANT_ALGO_OF_FORMAT[q.format],
        kv_cache_quant_algo=KV_ALGO_OF_CACHE[q.kv_cache],
        tp=recipe.parallelism.tp,
        max_position_embeddings=None,
        rotary_scaling=None,
    )
    _, overrides = builder_switches(
        parser_switches(explicit, tc.spec_family), ckpt, arch_number(recipe.target.gpu_arch)
    )
    for o in overrides:
        if explicit.get(o.field) is None:
            continue  # the parser's default, not the recipe's choice
        requested = "true" if o.requested else "false"
        yield Problem(
            f"build.{o.field}",
            f"trtllm-build {tc.trtllm_version} ignores {o.field} = {requested} here: {o.reason} "
            f"(format {q.format}, KV cache {q.kv_cache}, tp {recipe.parallelism.tp}"
            + (f", {ckpt.architecture})" if ckpt.architecture else ")"),
            f"remove build.{o.field}, or change the recipe so that it applies",
            o.requested,
        )

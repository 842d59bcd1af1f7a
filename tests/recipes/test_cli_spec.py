"""The recorded CLI specs: one per release family, each saying where it comes from and what it keeps."""

from __future__ import annotations

import pytest

from trtbuild.recipe import cli_spec

FAMILIES = cli_spec.families()
# PluginConfig fields that add_plugin_argument does not expose (conformance.md): never trtllm-build flags.
NOT_FLAGS = [
    "identity_plugin",
    "layernorm_quantization_plugin",
    "manage_weights",
    "qserve_gemm_plugin",
    "quantize_per_token_plugin",
    "quantize_tensor_plugin",
    "rmsnorm_quantization_plugin",
    "smooth_quant_gemm_plugin",
    "smooth_quant_plugins",
    "weight_only_groupwise_quant_matmul_plugin",
    "weight_only_quant_matmul_plugin",
]
REMOVED_BY_8329 = ("--auto_parallel", "--gpus_per_node", "--cluster_key")


def test_one_spec_per_pinned_release_family():
    assert FAMILIES == ("0.21", "1.0", "1.1", "1.2", "1.3")
    releases = {r for f in FAMILIES for r in cli_spec.info(f).releases}
    assert {"0.21.0", "1.0.0", "1.1.0", "1.2.1", "1.3.0rc20"} <= releases


@pytest.mark.parametrize("family", FAMILIES)
def test_each_spec_names_its_sources_and_is_honest_about_the_tag(family):
    info = cli_spec.info(family)
    assert info.proven_tag is False and info.exact is False and "NOT proven" in info.about
    assert set(info.sources) == {"trtllm-build", "convert_checkpoint", "quantize"}
    for sources in info.sources.values():
        assert sources and all("@" in s and "NVIDIA/TensorRT-LLM" in s for s in sources)
    assert info.tag["name"] == f"v{info.releases[0]}" and info.tag["how_known"]


@pytest.mark.parametrize("family", FAMILIES)
def test_plugin_config_fields_are_not_flags(family):
    build = cli_spec.flags("trtllm-build", family)
    assert not [f for f in NOT_FLAGS if f"--{f}" in build]
    assert "--use_fp8_context_fmha" in build and "--reduce_fusion" in build  # cli_plugin_args are


@pytest.mark.parametrize("family", FAMILIES)
def test_flags_removed_by_pr_8329_only_after_the_1_2_branch(family):
    build = cli_spec.flags("trtllm-build", family)
    kept = all(flag in build for flag in REMOVED_BY_8329)
    assert kept is (family != "1.3")
    if family != "1.3":
        assert any("--auto_parallel" in s for s in cli_spec.info(family).sources["trtllm-build"])


@pytest.mark.parametrize("family", FAMILIES)
def test_main_rules_are_recorded(family):
    rules = {r.id: r for r in cli_spec.main_rules(family)}
    assert set(rules) == {"multiple_profiles_with_opt_num_tokens", "gather_context_logits_with_draft_tokens"}
    assert all(r.raises.startswith("RuntimeError: ") and "main()" in r.source for r in rules.values())


@pytest.mark.parametrize(
    "argv,tripped",
    [
        (
            ["--multiple_profiles", "enable", "--opt_num_tokens", "64"],
            ["multiple_profiles_with_opt_num_tokens"],
        ),
        (["--multiple_profiles", "disable", "--opt_num_tokens", "64"], []),
        (["--multiple_profiles", "enable"], []),
        (["--gather_context_logits", "--max_draft_len", "3"], ["gather_context_logits_with_draft_tokens"]),
        (["--gather_all_token_logits", "--max_draft_len=3"], ["gather_context_logits_with_draft_tokens"]),
        (["--gather_context_logits", "--max_draft_len", "0"], []),
        (["--max_draft_len", "3"], []),
    ],
)
def test_broken_main_rules(argv, tripped):
    assert [r.id for r in cli_spec.broken_main_rules(argv, "1.2")] == tripped


def test_family_for_version():
    assert cli_spec.family_for_version("1.2.1") == "1.2"
    assert cli_spec.family_for_version("1.2.0") == "1.2"  # same line
    assert cli_spec.family_for_version("1.3.0rc20") == "1.3"
    assert cli_spec.family_for_version("2.0.0") is None

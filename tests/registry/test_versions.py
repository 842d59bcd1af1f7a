"""The one arch and version parser (registry.versions) both packages use."""

from __future__ import annotations

import pytest

from registry.api import (
    arch_family,
    arch_number,
    arch_of_compute_cap,
    at_least,
    normalize_arch,
    parse_version,
    same_version,
)
from registry.versions import sm_number


def test_arch_spellings() -> None:
    assert {normalize_arch(a) for a in ("sm90", "sm_90", "SM90", "9.0", "90")} == {"sm90"}
    assert normalize_arch("10.0") == "sm100" and normalize_arch(None) is None
    assert normalize_arch("hopper") == "hopper"  # not an arch: unchanged, never guessed
    assert [arch_of_compute_cap(c) for c in ("9.0", "8.9", "12.0", "[N/A]", None)] == [
        "sm90",
        "sm89",
        "sm120",
        None,
        None,
    ]


def test_arch_numbers_and_families() -> None:
    assert arch_number("sm90") == 90 and arch_number("sm100") == 100
    for bad in ("sm_90", "90", "sm9", "sm90a"):
        with pytest.raises(ValueError):
            arch_number(bad)
    assert (sm_number("9.0"), sm_number("SM_89"), sm_number("hopper"), sm_number(None)) == (
        90,
        89,
        None,
        None,
    )
    assert (arch_family("sm90"), arch_family("sm86"), arch_family("sm100"), arch_family(None)) == (
        9,
        8,
        10,
        None,
    )


def test_versions() -> None:
    assert parse_version("535.104.05") == (535, 104, 5) and parse_version("12.9") == (12, 9)
    assert parse_version("570.124.06 (beta)") == (570, 124, 6) and parse_version("n/a") is None
    assert same_version("1.0", "1.0.0") and not same_version("1.0.0", "1.0.0rc1")
    assert same_version(" weird ", "weird")  # not PEP 440: compared as trimmed text
    assert at_least("1.3.0rc26", "1.3.0rc20") and not at_least("1.2.1", "1.3.0rc20")
    assert not at_least("not-a-version", "1.0")

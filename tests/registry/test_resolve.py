"""Resolve rules (pure) and driver minimums from NVIDIA's documented tables."""

from __future__ import annotations

from registry.driver_compat import check_driver
from registry.resolve import HostFacts, evaluate, rank
from registry.versions import normalize_arch

GIB = 1 << 30


def cand(**kw: object) -> dict:
    base = {
        "hash": "sha256:" + "1" * 64,
        "gpu_arch": "sm90",
        "trtllm_version": "1.0.0",
        "cuda_version": "12.9",
        "tp": 1,
        "pp": 1,
        "size": 10 * GIB,
    }
    return base | kw


H100 = HostFacts(
    gpu_arch="sm90", driver_version="570.124.06", gpu_count=8, gpu_mem_gib=79.6, trtllm_version="1.0.0"
)


def test_normalize_arch() -> None:
    assert normalize_arch("9.0") == normalize_arch("sm_90") == normalize_arch("SM90") == "sm90"


def test_driver_minimums_are_sourced_or_unknown() -> None:
    assert check_driver("12.9", "525.60.13", True).ok is True
    assert check_driver("12.9", "520.61.05", True).ok is False
    assert "unknown" in check_driver("12.9", "470.57.02", True).reason  # no sourced fwd-compat list for 12.x
    assert check_driver("13.0", "580.65.06", True).ok is True
    assert check_driver("13.0", "535.104.05", True).ok is True  # documented forward-compat branch
    assert check_driver("13.0", "535.104.05", False).ok is False  # only on data-center GPUs
    assert check_driver("13.0", "545.23.08", True).ok is False
    assert (
        check_driver(None, "580.1", True).ok is None and "unknown" in check_driver(None, "580.1", True).reason
    )
    assert check_driver("14.0", "600.1", True).ok is None


def test_each_constraint_is_explained() -> None:
    assert evaluate(cand(), H100).failures == []
    assert "SM arch sm80 != host sm90" in evaluate(cand(gpu_arch="sm80"), H100).failures[0]
    assert (
        "TensorRT-LLM 0.21.0 != host runtime 1.0.0"
        in evaluate(cand(trtllm_version="0.21.0"), H100).failures[0]
    )
    old = HostFacts("sm90", "520.1", 8, 79.6, "1.0.0")
    assert "minimum for CUDA 12.9" in evaluate(cand(), old).failures[0]
    assert "needs 16 GPUs" in evaluate(cand(tp=8, pp=2), H100).failures[0]
    assert "per GPU" in evaluate(cand(size=79 * GIB), H100).failures[0]
    assert evaluate(cand(size=8 * 70 * GIB, tp=8), H100).failures == []  # 70 GiB/GPU + 8 GiB margin fits 79.6


def test_rank_prefers_known_driver_then_newest() -> None:
    unknown = cand(hash="sha256:" + "a" * 64, cuda_version=None)
    known_old = cand(hash="sha256:" + "b" * 64)
    bad = cand(hash="sha256:" + "c" * 64, gpu_arch="sm100")
    best, notes, rejected = rank([unknown, known_old, bad], H100)
    assert best["hash"] == known_old["hash"]
    assert [c["hash"] for c, _ in rejected] == [bad["hash"]]


def test_unknown_runtime_version_is_no_match() -> None:
    """A host whose TensorRT-LLM runtime is unknown fits no engine (it was a note, and resolve then picked
    the newest engine of any release)."""
    unknown = HostFacts(gpu_arch="sm90", driver_version="570.124.06", gpu_count=8, gpu_mem_gib=79.6)
    failures = evaluate(cand(), unknown).failures
    assert len(failures) == 1 and "TensorRT-LLM version of the host runtime unknown" in failures[0]
    best, _, rejected = rank([cand()], unknown)
    assert best is None and len(rejected) == 1


def test_resolve_and_bake_share_one_runtime_rule() -> None:
    """bake's base check and resolve's runtime check are the same function (registry.compat)."""
    import pytest

    from registry.compat import runtime_verdict
    from trtbuild.bake.versions import check_base_version
    from trtbuild.errors import InputError

    assert runtime_verdict("1.0", "1.0.0", "host runtime").ok  # PEP 440 equality, both ways
    assert evaluate(cand(trtllm_version="1.0"), H100).failures == []
    for engine, base in (("1.0.0", "1.1.0"), ("1.0.0", "")):
        with pytest.raises(InputError) as exc:
            check_base_version(engine, "img", base, "label")
        assert (
            str(exc.value).splitlines()[0] == runtime_verdict(engine, base, "base image img (label)").reason
        )
    check_base_version("1.0.0", "img", "1.0", "label")

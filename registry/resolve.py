"""Pick the best artifact of a name for a host, and explain every rejection.

A candidate fits when: same SM arch; the host's TensorRT-LLM runtime equals the build's (``compat``: a
runtime of unknown version is no match); the driver meets the toolchain CUDA version's documented minimum
(``driver_compat``); GPU count >= tp*pp; and per-GPU memory holds ``size / (tp*pp)`` plus a margin of
``max(MARGIN_MIN_GIB, MARGIN_FRACTION * gpu_mem)`` for the runtime's activations, CUDA context and a minimal
KV cache. Other facts the host does not report (driver, GPU count, memory) are not checked (noted).
Among fitting candidates: known-good driver first, then newest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from registry.compat import runtime_verdict
from registry.driver_compat import check_driver

GIB = 1 << 30
MARGIN_MIN_GIB = 2.0
MARGIN_FRACTION = 0.10
DATACENTER_ARCHS = {"sm80", "sm90", "sm100"}  # A100/A30, H100/H200/GH200, B200/GB200: data-center parts


@dataclass
class HostFacts:
    gpu_arch: str  # "sm90"
    driver_version: str | None = None
    gpu_count: int | None = None
    gpu_mem_gib: float | None = None  # per GPU
    trtllm_version: str | None = None
    datacenter_gpu: bool | None = None  # None: inferred from gpu_arch (DATACENTER_ARCHS)

    def is_datacenter(self) -> bool:
        return (
            self.datacenter_gpu
            if self.datacenter_gpu is not None
            else normalize_arch(self.gpu_arch) in DATACENTER_ARCHS
        )


@dataclass
class Verdict:
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    driver_known: bool = True


@lru_cache(maxsize=1024)
def normalize_arch(arch: str | None) -> str | None:
    """'sm_90', 'SM90', '9.0', '90' -> 'sm90'."""
    if arch is None:
        return None
    a = str(arch).strip().lower().replace("_", "")
    if a.startswith("sm"):
        a = a[2:]
    if "." in a:
        major, _, minor = a.partition(".")
        a = f"{major}{minor}"
    return f"sm{a}" if a.isdigit() or a[:-1].isdigit() else str(arch)


def evaluate(c: Any, host: HostFacts) -> Verdict:
    """Check one candidate (a mapping with catalog columns) against a host."""
    v = Verdict()
    arch = normalize_arch(c["gpu_arch"])
    host_arch = normalize_arch(host.gpu_arch)
    if arch is None:
        v.failures.append("SM arch unknown: the artifact records no gpu_arch")
    elif arch != host_arch:
        v.failures.append(f"SM arch {arch} != host {host_arch}")
    runtime = runtime_verdict(c["trtllm_version"], host.trtllm_version, "host runtime")
    if not runtime.ok:
        v.failures.append(runtime.reason)
    drv = check_driver(c["cuda_version"], host.driver_version, host.is_datacenter())
    if drv.ok is False:
        v.failures.append(drv.reason)
    else:
        v.notes.append(drv.reason)
        v.driver_known = drv.ok is True
    ranks = (c["tp"] or 1) * (c["pp"] or 1)
    if host.gpu_count is None:
        v.notes.append("host GPU count unknown: not checked")
    elif host.gpu_count < ranks:
        v.failures.append(
            f"needs {ranks} GPUs (tp={c['tp'] or 1} x pp={c['pp'] or 1}), host has {host.gpu_count}"
        )
    if host.gpu_mem_gib is None:
        v.notes.append("host GPU memory unknown: not checked")
    else:
        per_gpu = c["size"] / ranks / GIB
        margin = max(MARGIN_MIN_GIB, MARGIN_FRACTION * host.gpu_mem_gib)
        if per_gpu + margin > host.gpu_mem_gib:
            v.failures.append(
                f"engine needs {per_gpu:.1f} GiB per GPU + {margin:.1f} GiB margin "
                f"> {host.gpu_mem_gib:.1f} GiB"
            )
    return v


@dataclass
class Resolution:
    best: Any | None  # Artifact
    rejected: list[tuple[Any, str]]  # (Artifact, reason)
    notes: list[str] = field(default_factory=list)  # about best

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": self.best.to_dict() if self.best is not None else None,
            "notes": self.notes,
            "rejected": [{"hash": a.hash, "name": a.name, "reason": r} for a, r in self.rejected],
        }


def rank(candidates: list[Any], host: HostFacts) -> tuple[Any | None, list[str], list[tuple[Any, str]]]:
    """(best candidate, its notes, [(rejected candidate, reason)]); candidates are newest first."""
    fitting: list[tuple[Any, Verdict]] = []
    rejected: list[tuple[Any, str]] = []
    for c in candidates:
        v = evaluate(c, host)
        if v.failures:
            rejected.append((c, "; ".join(v.failures)))
        else:
            fitting.append((c, v))
    if not fitting:
        return None, [], rejected
    fitting.sort(key=lambda cv: not cv[1].driver_known)  # stable: newest first within each group
    best, verdict = fitting[0]
    return best, verdict.notes, rejected

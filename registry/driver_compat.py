"""Minimum NVIDIA driver for a CUDA version, only from what NVIDIA documents (sources cited per entry).

Two documented paths let a CUDA toolkit run on a driver:
- Minor version compatibility (CUDA 11+): any driver at or above the major family's minimum.
  Source: https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html (Table
  "CUDA Toolkit 11.x, 12.x, and 13.x Driver Version Ranges": 13.x >= 580, 12.x >= 525, 11.x >= 450; the note
  there gives 450.80.02 as the 11.x driver that enables it).
- Forward compatibility: data-center GPUs only, with the cuda-compat package inside the image (NGC images ship
  it). Source for CUDA 13.0-based NGC containers: https://docs.nvidia.com/deeplearning/frameworks/sglang-release-notes/rel-25-10.html
  ("Release 25.10 is based on CUDA 13.0.2 ... on a data center GPU ... you can use NVIDIA driver release
  470.57 (or later R470), 525.85 (or later R525), 535.86 (or later R535), or 550.54 (or later R550) in
  forward-compatibility mode"). No such list is recorded here for other CUDA majors: they answer "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from registry.versions import parse_version

MINOR_COMPAT_SOURCE = "https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html"
FORWARD_COMPAT_SOURCE = "https://docs.nvidia.com/deeplearning/frameworks/sglang-release-notes/rel-25-10.html"

MINOR_COMPAT_MINIMUM: dict[int, tuple[int, ...]] = {11: (450, 80, 2), 12: (525,), 13: (580,)}
# CUDA major -> {driver branch: first driver of that branch supported in forward-compatibility mode}
FORWARD_COMPAT: dict[int, dict[int, tuple[int, ...]]] = {
    13: {470: (470, 57), 525: (525, 85), 535: (535, 86), 550: (550, 54)},
}


def _fmt(v: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in v)


@dataclass(frozen=True)
class DriverVerdict:
    ok: bool | None  # None: unknown
    reason: str


@lru_cache(maxsize=4096)
def check_driver(cuda_version: str | None, driver_version: str | None, datacenter_gpu: bool) -> DriverVerdict:
    """Can a toolchain built with ``cuda_version`` run on ``driver_version``? Unknown facts say 'unknown'."""
    cuda = parse_version(cuda_version)
    driver = parse_version(driver_version)
    if cuda is None:
        return DriverVerdict(None, "minimum driver unknown: the artifact records no CUDA version")
    if driver is None:
        return DriverVerdict(None, "driver check skipped: the host driver version is unknown")
    minimum = MINOR_COMPAT_MINIMUM.get(cuda[0])
    if minimum is None:
        return DriverVerdict(
            None, f"minimum driver for CUDA {cuda_version} unknown (not in NVIDIA's documented table)"
        )
    if driver >= minimum:
        return DriverVerdict(
            True, f"driver {driver_version} >= {_fmt(minimum)} (CUDA {cuda[0]}.x minor version compatibility)"
        )
    branches = FORWARD_COMPAT.get(cuda[0])
    if branches is None:
        return DriverVerdict(
            False,
            f"driver {driver_version} < {_fmt(minimum)}, the minimum for CUDA {cuda_version} "
            f"(forward-compatibility support for CUDA {cuda[0]}.x on older branches: unknown)",
        )
    first = branches.get(driver[0])
    if first is not None and driver >= first and datacenter_gpu:
        return DriverVerdict(
            True,
            f"driver {driver_version} runs CUDA {cuda_version} in forward-compatibility mode "
            f"(data-center GPU, R{driver[0]} >= {_fmt(first)})",
        )
    why = (
        "not a data-center GPU"
        if first is not None and driver >= first
        else f"R{driver[0]} is not a forward-compatible branch at this version (documented: "
        + ", ".join(f"R{b} >= {_fmt(v)}" for b, v in sorted(branches.items()))
        + ")"
    )
    return DriverVerdict(
        False, f"driver {driver_version} < {_fmt(minimum)}, the minimum for CUDA {cuda_version}; {why}"
    )

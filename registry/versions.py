"""SM arch names and version numbers: the one parser for both packages (trtbuild uses it through
``registry.api``).

- arch: ``"sm90"`` is the canonical name; a compute capability ``"9.0"`` (nvidia-smi), ``"sm_90"``, ``"SM90"``
  and ``"90"`` are read as it.
- dotted numbers (drivers ``535.104.05``, CUDA ``12.9``): tuples of ints, compared as tuples.
- release versions (TensorRT-LLM ``1.0.0``, ``1.3.0rc20``): PEP 440 (``packaging``, imported when needed).
"""

from __future__ import annotations

import re
from functools import lru_cache

ARCH_RE = re.compile(r"^sm(\d{2,3})\Z")
COMPUTE_CAP_RE = re.compile(r"^\d+\.\d+\Z")
_DOTTED_RE = re.compile(r"^\s*(\d+(?:\.\d+)*)")


# ---- SM arch -------------------------------------------------------------------------------------------
@lru_cache(maxsize=1024)
def normalize_arch(arch: str | None) -> str | None:
    """'sm_90', 'SM90', '9.0', '90' -> 'sm90'; text that is no arch comes back unchanged."""
    if arch is None:
        return None
    a = str(arch).strip().lower().replace("_", "")
    if a.startswith("sm"):
        a = a[2:]
    if "." in a:
        major, _, minor = a.partition(".")
        a = f"{major}{minor}"
    return f"sm{a}" if a.isdigit() or a[:-1].isdigit() else str(arch)


def arch_of_compute_cap(compute_cap: str | None) -> str | None:
    """A compute capability as nvidia-smi prints it: "9.0" -> "sm90", "10.0" -> "sm100"; else None."""
    if not compute_cap or not COMPUTE_CAP_RE.match(compute_cap):
        return None
    major, minor = compute_cap.split(".")
    return f"sm{int(major)}{int(minor)}"


def arch_number(arch: str) -> int:
    """``"sm90"`` -> 90 (ValueError for anything else)."""
    match = ARCH_RE.match(arch)
    if not match:
        raise ValueError(f"not an SM arch: {arch!r}")
    return int(match.group(1))


def sm_number(arch: str | None) -> int | None:
    """Any spelling ``normalize_arch`` reads -> 90; None when it names no arch."""
    norm = normalize_arch(arch)
    digits = norm[2:] if norm and norm.startswith("sm") else ""
    return int(digits) if digits.isdigit() else None


def arch_family(arch: str | None) -> int | None:
    """The SM major: sm90 -> 9 (Hopper), sm89 and sm86 -> 8, sm100 -> 10; None when unknown."""
    number = sm_number(arch)
    return number // 10 if number is not None else None


# ---- versions ------------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def parse_version(text: str | None) -> tuple[int, ...] | None:
    """'535.104.05' -> (535, 104, 5) (its leading dotted number); None when it has none."""
    if not text:
        return None
    m = _DOTTED_RE.match(str(text))
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def same_version(a: str, b: str) -> bool:
    """Equal as PEP 440 versions (``1.0`` == ``1.0.0``), else as trimmed strings."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a.strip() == b.strip()


def at_least(version: str, minimum: str) -> bool:
    """``version >= minimum`` as PEP 440 versions; False when either is not one."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) >= Version(minimum)
    except InvalidVersion:
        return False

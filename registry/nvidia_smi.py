"""GPUs from nvidia-smi: the one query and parser, for resolve (this host) and trtbuild's fingerprint (the
host, or inside the toolchain container through a runner, with the same argv and parser).

No GPU (no nvidia-smi, no driver) is a fact, not an error: no GPUs and ``error`` says why.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

from registry.versions import COMPUTE_CAP_RE, arch_of_compute_cap

QUERY_FIELDS = "name,compute_cap,driver_version,memory.total"
QUERY_ARGV = ["nvidia-smi", f"--query-gpu={QUERY_FIELDS}", "--format=csv,noheader,nounits"]
SUMMARY_ARGV = ["nvidia-smi"]  # its header carries the driver's CUDA version
_NA = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]", "unknown error"}
_DRIVER_CELL_RE = re.compile(r"^\d+(\.\d+)*\Z")
_MIB_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(MiB)?\Z")
_CUDA_RE = re.compile(r"CUDA Version:\s*([0-9][0-9.]*)")


@dataclass
class Gpu:
    index: int
    name: str
    compute_cap: str | None
    arch: str | None
    driver_version: str | None
    memory_mib: int | None


@dataclass
class GpuFacts:
    """The GPUs nvidia-smi reported (in ``source``: "host" or "container:<image>"), or why there are none."""

    gpus: list[Gpu] = field(default_factory=list)
    cuda_driver_version: str | None = None
    source: str = "host"
    error: str | None = None

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    @property
    def gpu_name(self) -> str | None:
        return self.gpus[0].name if self.gpus else None

    @property
    def compute_capability(self) -> str | None:
        return self.gpus[0].compute_cap if self.gpus else None

    @property
    def gpu_arch(self) -> str | None:
        return self.gpus[0].arch if self.gpus else None

    @property
    def driver_version(self) -> str | None:
        return next((g.driver_version for g in self.gpus if g.driver_version), None)

    @property
    def memory_mib(self) -> int | None:
        """The smallest GPU's memory (what every rank can count on)."""
        mems = [g.memory_mib for g in self.gpus if g.memory_mib is not None]
        return min(mems) if mems else None

    @property
    def homogeneous(self) -> bool:
        return len({(g.name, g.compute_cap) for g in self.gpus}) <= 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu_count": self.gpu_count,
            "gpu_name": self.gpu_name,
            "gpu_arch": self.gpu_arch,
            "compute_capability": self.compute_capability,
            "driver_version": self.driver_version,
            "cuda_driver_version": self.cuda_driver_version,
            "memory_mib": self.memory_mib,
            "homogeneous": self.homogeneous,
            "source": self.source,
            "error": self.error,
            "gpus": [asdict(g) for g in self.gpus],
        }


# ---- parsing ---------------------------------------------------------------------------------------
def _value(cell: str) -> str | None:
    cell = cell.strip()
    return None if cell.lower() in _NA else cell


def _mib(cell: str | None) -> int | None:
    if cell is None:
        return None
    m = _MIB_RE.match(cell)
    return int(float(m.group(1))) if m else None


def parse_gpu_query(text: str) -> list[Gpu]:
    """Rows of the ``QUERY_ARGV`` output (``--query-gpu=name,compute_cap,driver_version,memory.total``).

    Tolerates a header row, units ("81559 MiB"), N/A cells, commas inside names and foreign lines
    (container banners): a row counts when its compute capability or driver cell looks like one.
    """
    gpus: list[Gpu] = []
    for line in text.splitlines():
        parts = line.rsplit(",", 3)
        if len(parts) < 4:
            continue
        name = parts[0].strip()
        cc, driver, mem = (_value(p) for p in parts[1:])
        if cc is not None and not COMPUTE_CAP_RE.match(cc):
            continue
        if driver is not None and not _DRIVER_CELL_RE.match(driver):
            continue
        if cc is None and driver is None:
            continue
        gpus.append(
            Gpu(
                index=len(gpus),
                name=name,
                compute_cap=cc,
                arch=arch_of_compute_cap(cc),
                driver_version=driver,
                memory_mib=_mib(mem),
            )
        )
    return gpus


def parse_cuda_version(text: str) -> str | None:
    """The "CUDA Version: X.Y" of nvidia-smi's summary header (the driver's CUDA version)."""
    m = _CUDA_RE.search(text)
    return m.group(1) if m else None


def gpu_facts(query_output: str, summary_output: str | None, *, source: str) -> GpuFacts:
    """GpuFacts from the outputs of ``QUERY_ARGV`` and (when it ran) ``SUMMARY_ARGV``."""
    gpus = parse_gpu_query(query_output)
    return GpuFacts(
        gpus=gpus,
        cuda_driver_version=parse_cuda_version(summary_output) if summary_output else None,
        source=source,
        error=None if gpus else "nvidia-smi reported no GPU",
    )


# ---- this host -------------------------------------------------------------------------------------
def _run(argv: list[str], timeout: float) -> tuple[int, str]:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    return p.returncode, p.stdout + p.stderr


def host_gpus(nvidia_smi: str = "nvidia-smi", timeout: float = 30.0) -> GpuFacts:
    """GPUs of this host (``nvidia_smi`` on PATH)."""
    try:
        code, out = _run([nvidia_smi, *QUERY_ARGV[1:]], timeout)
    except FileNotFoundError:
        return GpuFacts(source="host", error="nvidia-smi not found: no NVIDIA driver on this host")
    except subprocess.TimeoutExpired:
        return GpuFacts(source="host", error=f"nvidia-smi did not answer within {timeout:g} s")
    if code != 0:
        return GpuFacts(source="host", error=f"nvidia-smi failed ({code}): {out.strip()[:300]}")
    summary = None
    try:
        code2, text = _run([nvidia_smi, *SUMMARY_ARGV[1:]], timeout)
        summary = text if code2 == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return gpu_facts(out, summary, source="host")

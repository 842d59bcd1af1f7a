"""Host and toolchain facts: GPUs (name, compute capability → "sm90", driver, CUDA driver version,
memory, count) from nvidia-smi, and the toolchain's TensorRT-LLM / TensorRT / ModelOpt versions from a
small Python probe run inside the image. Read on the host directly or inside a container via a runner.

No GPU (no nvidia-smi, no driver, no NVIDIA runtime) is a fact, not an error: gpu_count 0 and ``error``
says why.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trtbuild.errors import RunnerUnavailable, StepFailed
from trtbuild.runner.base import Mount, Runner, RunSpec

QUERY_FIELDS = "name,compute_cap,driver_version,memory.total"
QUERY_ARGV = ["nvidia-smi", f"--query-gpu={QUERY_FIELDS}", "--format=csv,noheader,nounits"]
SUMMARY_ARGV = ["nvidia-smi"]
PROBE_MARK = "TRTBUILD_PROBE "
# Prints the installed versions (package metadata only: nothing heavy is imported).
VERSION_PROBE = (
    "import importlib.metadata as m, json, platform\n"
    "def v(*names):\n"
    "    for n in names:\n"
    "        try:\n"
    "            return m.version(n)\n"
    "        except m.PackageNotFoundError:\n"
    "            pass\n"
    "print('" + PROBE_MARK + "' + json.dumps({"
    "'tensorrt_llm': v('tensorrt_llm', 'tensorrt-llm'), "
    "'tensorrt': v('tensorrt', 'tensorrt-cu12'), "
    "'modelopt': v('nvidia-modelopt', 'nvidia_modelopt'), "
    "'torch': v('torch'), "
    "'python': platform.python_version()}), flush=True)\n"
)
_NA = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]", "unknown error"}
_CC_RE = re.compile(r"^\d+\.\d+$")
_DRIVER_RE = re.compile(r"Driver Version:\s*([0-9][0-9.]*)")
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
class GpuFingerprint:
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


@dataclass
class ToolchainVersions:
    image: str | None
    trtllm_version: str | None
    tensorrt_version: str | None
    modelopt_version: str | None
    torch_version: str | None
    python_version: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Fingerprint:
    gpu: GpuFingerprint
    toolchain: ToolchainVersions | None = None

    @property
    def gpu_arch(self) -> str | None:
        return self.gpu.gpu_arch

    @property
    def gpu_name(self) -> str | None:
        return self.gpu.gpu_name

    @property
    def gpu_count(self) -> int:
        return self.gpu.gpu_count

    @property
    def driver_version(self) -> str | None:
        return self.gpu.driver_version

    @property
    def cuda_version(self) -> str | None:
        return self.gpu.cuda_driver_version

    @property
    def trtllm_version(self) -> str | None:
        return self.toolchain.trtllm_version if self.toolchain else None

    @property
    def tensorrt_version(self) -> str | None:
        return self.toolchain.tensorrt_version if self.toolchain else None

    def to_dict(self) -> dict[str, Any]:
        """Flat keys named as the catalog columns, plus the details under ``gpu`` / ``toolchain``."""
        tc = self.toolchain
        return {
            "gpu_arch": self.gpu.gpu_arch,
            "gpu_name": self.gpu.gpu_name,
            "gpu_count": self.gpu.gpu_count,
            "driver_version": self.gpu.driver_version,
            "cuda_version": self.gpu.cuda_driver_version,
            "memory_mib": self.gpu.memory_mib,
            "trtllm_version": tc.trtllm_version if tc else None,
            "tensorrt_version": tc.tensorrt_version if tc else None,
            "modelopt_version": tc.modelopt_version if tc else None,
            "gpu": self.gpu.to_dict(),
            "toolchain": tc.to_dict() if tc else None,
        }


# ---- parsing ---------------------------------------------------------------------------------------
def arch_of(compute_cap: str | None) -> str | None:
    """ "9.0" → "sm90", "8.9" → "sm89", "10.0" → "sm100"."""
    if not compute_cap or not _CC_RE.match(compute_cap):
        return None
    major, minor = compute_cap.split(".")
    return f"sm{int(major)}{int(minor)}"


def _value(cell: str) -> str | None:
    cell = cell.strip()
    return None if cell.lower() in _NA else cell


def _mib(cell: str | None) -> int | None:
    if cell is None:
        return None
    m = re.match(r"^(\d+(?:\.\d+)?)\s*(MiB)?$", cell)
    return int(float(m.group(1))) if m else None


def parse_gpu_query(text: str) -> list[Gpu]:
    """Rows of ``nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,…``.

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
        if cc is not None and not _CC_RE.match(cc):
            continue
        if driver is not None and not re.match(r"^\d+(\.\d+)*$", driver):
            continue
        if cc is None and driver is None:
            continue
        gpus.append(
            Gpu(
                index=len(gpus),
                name=name,
                compute_cap=cc,
                arch=arch_of(cc),
                driver_version=driver,
                memory_mib=_mib(mem),
            )
        )
    return gpus


def parse_cuda_version(text: str) -> str | None:
    """The "CUDA Version: X.Y" of nvidia-smi's summary header (the driver's CUDA version)."""
    m = _CUDA_RE.search(text)
    return m.group(1) if m else None


def parse_driver_version(text: str) -> str | None:
    m = _DRIVER_RE.search(text)
    return m.group(1) if m else None


def parse_probe(lines: list[str]) -> dict[str, Any]:
    for line in reversed(lines):
        if line.startswith(PROBE_MARK):
            return json.loads(line[len(PROBE_MARK) :])
    raise StepFailed(
        "the toolchain version probe printed no result line", hint="the image needs python3 on PATH"
    )


# ---- collecting ------------------------------------------------------------------------------------
def _host_run(argv: list[str], timeout: float) -> tuple[int, str]:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def host_gpus(nvidia_smi: str = "nvidia-smi", timeout: float = 30.0) -> GpuFingerprint:
    """GPUs of this host (nvidia-smi on PATH)."""
    try:
        code, out = _host_run([nvidia_smi, *QUERY_ARGV[1:]], timeout)
    except FileNotFoundError:
        return GpuFingerprint(source="host", error="nvidia-smi not found: no NVIDIA driver on this host")
    except subprocess.TimeoutExpired:
        return GpuFingerprint(source="host", error=f"nvidia-smi did not answer within {timeout:g} s")
    if code != 0:
        return GpuFingerprint(source="host", error=f"nvidia-smi failed ({code}): {out.strip()[:300]}")
    gpus = parse_gpu_query(out)
    cuda = None
    try:
        code2, summary = _host_run([nvidia_smi], timeout)
        if code2 == 0:
            cuda = parse_cuda_version(summary)
    except (OSError, subprocess.TimeoutExpired):
        pass
    return GpuFingerprint(
        gpus=gpus,
        cuda_driver_version=cuda,
        source="host",
        error=None if gpus else "nvidia-smi reported no GPU",
    )


def _capture(runner: Runner, spec: RunSpec) -> list[str]:
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="trtbuild-probe-") as tmp:
        runner.run(spec, log_path=Path(tmp) / f"{spec.name}.log", on_line=lines.append)
    return lines


def container_gpus(
    runner: Runner, image: str | None, *, gpus: int = -1, timeout_s: float = 120.0
) -> GpuFingerprint:
    """GPUs as seen inside ``image`` (``gpus=-1``: all of them are requested)."""
    source = f"container:{image}" if image else "local"

    def probe(name: str, argv: list[str]) -> RunSpec:
        return RunSpec(name=name, image=image, argv=list(argv), gpus=gpus, timeout_s=timeout_s)

    try:
        rows = _capture(runner, probe("fingerprint-gpus", QUERY_ARGV))
    except RunnerUnavailable as exc:
        return GpuFingerprint(source=source, error=str(exc))
    except StepFailed as exc:
        return GpuFingerprint(source=source, error=f"nvidia-smi failed in the toolchain: {exc}")
    found = parse_gpu_query("\n".join(rows))
    cuda = None
    try:
        cuda = parse_cuda_version("\n".join(_capture(runner, probe("fingerprint-cuda", SUMMARY_ARGV))))
    except (RunnerUnavailable, StepFailed):
        pass
    return GpuFingerprint(
        gpus=found,
        cuda_driver_version=cuda,
        source=source,
        error=None if found else "nvidia-smi reported no GPU",
    )


def toolchain_versions(
    runner: Runner,
    image: str | None,
    *,
    mounts: list[Mount] | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 120.0,
    secret_env: tuple[str, ...] = (),
    masked: tuple[str, ...] = (),
) -> ToolchainVersions:
    """TensorRT-LLM, TensorRT, ModelOpt, torch and Python versions installed in ``image``."""
    spec = RunSpec(
        name="fingerprint-versions",
        image=image,
        argv=["python3", "-c", VERSION_PROBE],
        mounts=list(mounts or []),
        env=dict(env or {}),
        secret_env=secret_env,
        masked_values=masked,
        gpus=0,
        timeout_s=timeout_s,
    )
    facts = parse_probe(_capture(runner, spec))
    return ToolchainVersions(
        image=image,
        trtllm_version=facts.get("tensorrt_llm"),
        tensorrt_version=facts.get("tensorrt"),
        modelopt_version=facts.get("modelopt"),
        torch_version=facts.get("torch"),
        python_version=facts.get("python"),
    )


def fingerprint(
    runner: Runner | None = None,
    image: str | None = None,
    *,
    gpus_in_container: bool = False,
    gpus: int = -1,
    mounts: list[Mount] | None = None,
    env: dict[str, str] | None = None,
) -> Fingerprint:
    """Host GPUs (or those seen in the container when ``gpus_in_container``) and, given a runner and
    an image, the toolchain versions."""
    if runner is not None and gpus_in_container:
        gpu = container_gpus(runner, image, gpus=gpus)
    else:
        gpu = host_gpus()
    tc = toolchain_versions(runner, image, mounts=mounts, env=env) if runner is not None else None
    return Fingerprint(gpu=gpu, toolchain=tc)


def collect_fingerprint(
    runner: Runner,
    image: str | None,
    *,
    gpus: int = -1,
    extra_env: dict[str, str] | None = None,
    extra_mounts: list[Mount] | None = None,
    secret_env: tuple[str, ...] = (),
    masked: tuple[str, ...] = (),
) -> Fingerprint:
    """What the builder records: the GPUs as the toolchain sees them (``gpus`` requested, as the build
    step will) and the toolchain's versions. A host without GPUs gives gpu_count 0, never an exception."""
    return Fingerprint(
        gpu=container_gpus(runner, image, gpus=gpus),
        toolchain=toolchain_versions(
            runner, image, mounts=extra_mounts, env=extra_env, secret_env=secret_env, masked=masked
        ),
    )

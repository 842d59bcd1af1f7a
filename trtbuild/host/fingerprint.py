"""Host and toolchain facts: GPUs (name, compute capability → "sm90", driver, CUDA driver version,
memory, count) from nvidia-smi, and the toolchain's TensorRT-LLM / TensorRT / ModelOpt versions from a
small Python probe run inside the image. Read on the host directly (``registry.api.host_gpus``) or inside a
container via a runner, with the registry's nvidia-smi query and parser either way.

No GPU (no nvidia-smi, no driver, no NVIDIA runtime) is a fact, not an error: gpu_count 0 and ``error``
says why.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from registry.api import GpuFacts, nvidia_smi
from trtbuild.errors import RunnerUnavailable, StepFailed
from trtbuild.runner.base import Mount, Runner, RunSpec

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
    gpu: GpuFacts
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
def parse_probe(lines: list[str]) -> dict[str, Any]:
    for line in reversed(lines):
        if line.startswith(PROBE_MARK):
            return json.loads(line[len(PROBE_MARK) :])
    raise StepFailed(
        "the toolchain version probe printed no result line", hint="the image needs python3 on PATH"
    )


# ---- collecting ------------------------------------------------------------------------------------
def _capture(runner: Runner, spec: RunSpec) -> list[str]:
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="trtbuild-probe-") as tmp:
        runner.run(spec, log_path=Path(tmp) / f"{spec.name}.log", on_line=lines.append)
    return lines


def container_gpus(
    runner: Runner, image: str | None, *, gpus: int = -1, timeout_s: float = 120.0
) -> GpuFacts:
    """GPUs as seen inside ``image`` (``gpus=-1``: all of them are requested), with nvidia-smi's argv and
    parser of the registry."""
    source = f"container:{image}" if image else "local"

    def probe(name: str, argv: list[str]) -> RunSpec:
        return RunSpec(name=name, image=image, argv=list(argv), gpus=gpus, timeout_s=timeout_s)

    try:
        rows = _capture(runner, probe("fingerprint-gpus", nvidia_smi.QUERY_ARGV))
    except RunnerUnavailable as exc:
        return GpuFacts(source=source, error=str(exc))
    except StepFailed as exc:
        return GpuFacts(source=source, error=f"nvidia-smi failed in the toolchain: {exc}")
    summary = None
    try:
        summary = "\n".join(_capture(runner, probe("fingerprint-cuda", nvidia_smi.SUMMARY_ARGV)))
    except (RunnerUnavailable, StepFailed):
        pass
    return nvidia_smi.gpu_facts("\n".join(rows), summary, source=source)


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

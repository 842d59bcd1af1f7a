"""Facts of the current host for resolve: nvidia-smi (arch, driver, GPU count, memory), TensorRT-LLM
version."""

from __future__ import annotations

import shutil
import subprocess

from registry.errors import InvalidInput
from registry.resolve import HostFacts, normalize_arch


def detect(
    gpu_arch: str | None = None,
    driver: str | None = None,
    gpus: int | None = None,
    gpu_mem_gib: float | None = None,
    trtllm: str | None = None,
) -> HostFacts:
    """Explicit values win; the rest come from nvidia-smi and the installed tensorrt_llm package."""
    if None in (gpu_arch, driver, gpus, gpu_mem_gib):
        smi = shutil.which("nvidia-smi")
        if smi:
            out = subprocess.run(
                [smi, "--query-gpu=compute_cap,driver_version,memory.total", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            rows = [[x.strip() for x in line.split(",")] for line in out.stdout.splitlines() if line.strip()]
            if out.returncode == 0 and rows:
                gpu_arch = gpu_arch or normalize_arch(rows[0][0])
                driver = driver or rows[0][1]
                gpus = gpus if gpus is not None else len(rows)
                if gpu_mem_gib is None:
                    gpu_mem_gib = min(float(r[2]) for r in rows) / 1024.0  # MiB -> GiB; smallest GPU
    if gpu_arch is None:
        raise InvalidInput(
            "cannot tell this host's GPU: nvidia-smi is not available and --gpu-arch was not given",
            hint="pass --gpu-arch sm90 (and --driver, --gpus, --gpu-mem-gib, --trtllm) to resolve for "
            "another host",
        )
    if trtllm is None:
        from importlib import metadata

        try:
            trtllm = metadata.version("tensorrt_llm")
        except metadata.PackageNotFoundError:
            trtllm = None
    return HostFacts(
        gpu_arch=normalize_arch(gpu_arch) or gpu_arch,
        driver_version=driver,
        gpu_count=gpus,
        gpu_mem_gib=gpu_mem_gib,
        trtllm_version=trtllm,
    )

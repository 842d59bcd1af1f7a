"""Facts of the current host for resolve: nvidia-smi (arch, driver, GPU count, memory), TensorRT-LLM
version."""

from __future__ import annotations

from registry.errors import InvalidInput
from registry.nvidia_smi import host_gpus
from registry.resolve import HostFacts
from registry.versions import normalize_arch


def detect(
    gpu_arch: str | None = None,
    driver: str | None = None,
    gpus: int | None = None,
    gpu_mem_gib: float | None = None,
    trtllm: str | None = None,
) -> HostFacts:
    """Explicit values win; the rest come from nvidia-smi and the installed tensorrt_llm package."""
    why_unknown = ""
    if None in (gpu_arch, driver, gpus, gpu_mem_gib):
        found = host_gpus()
        why_unknown = found.error or "nvidia-smi reported no compute capability"
        if found.gpus:
            gpu_arch = gpu_arch or found.gpu_arch
            driver = driver or found.driver_version
            gpus = gpus if gpus is not None else found.gpu_count
            if gpu_mem_gib is None and found.memory_mib is not None:
                gpu_mem_gib = found.memory_mib / 1024.0  # MiB -> GiB; the smallest GPU
    if gpu_arch is None:
        raise InvalidInput(
            f"cannot tell this host's GPU ({why_unknown}) and --gpu-arch was not given",
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

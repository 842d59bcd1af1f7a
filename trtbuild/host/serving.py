"""The serving host ``resolve`` picks an engine for: explicit flags, nvidia-smi, and the TensorRT-LLM version
of the runtime (``--trtllm``, a serving image's label or probe, or the installed tensorrt_llm)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trtbuild.errors import InputError

if TYPE_CHECKING:
    from registry.api import HostFacts


def serving_host(
    gpu_arch: str | None = None,
    driver: str | None = None,
    gpus: int | None = None,
    gpu_mem_gib: float | None = None,
    trtllm: str | None = None,
    serving_image: str | None = None,
) -> HostFacts:
    """Host facts for resolve. ``serving_image`` is read through the Docker Engine; when ``trtllm`` is given
    too, both must agree. A version nobody gives stays None, and resolve refuses it."""
    from registry.api import detect_host, same_version

    if serving_image:
        from trtbuild.bake.versions import serving_image_version

        image_version, how = serving_image_version(serving_image)
        if trtllm and not same_version(trtllm, image_version):
            raise InputError(
                f"--trtllm {trtllm} but the serving image {serving_image} has TensorRT-LLM {image_version} "
                f"({how})",
                hint="give one of them, or the version the image really has",
            )
        trtllm = image_version
    return detect_host(gpu_arch, driver, gpus, gpu_mem_gib, trtllm)

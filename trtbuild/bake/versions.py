"""TensorRT-LLM version checks between an engine and the serving base image.

A TensorRT plan only deserialises in the TensorRT build that wrote it, and TensorRT-LLM checks its own
version against the engine's ``config.json`` "version": baking an engine into a base image of another
TensorRT-LLM release produces an image that fails at start with a serialization-version error. So the
base's version is found *before* building: from the label trtbuild puts on images it bakes
(``ai.trtbuild.trtllm_version``), otherwise by running a short probe container of the base.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trtbuild.docker_engine import docker_client, ensure_image
from trtbuild.errors import ImageUnavailable, InputError, RunnerUnavailable

VERSION_LABEL = "ai.trtbuild.trtllm_version"
# Reads the installed distribution's metadata only: no import of tensorrt_llm, so no GPU is needed.
PROBE_MARK = "trtbuild-probe:"
PROBE_CODE = f"import importlib.metadata as m; print({PROBE_MARK!r} + m.version('tensorrt_llm'))"


def ensure_base_image(client: Any, image: str, *, pull: bool) -> Any:
    """The base image, pulled first when absent and ``pull``; the base is the user's choice (``--base``),
    so a missing one is an input error."""
    try:
        return ensure_image(client, image, pull=pull, what="base image")
    except ImageUnavailable as exc:
        raise InputError(
            exc.args[0], hint="docker pull it first, or drop --no-pull" if not pull else exc.hint
        ) from None


def probe_base_version(client: Any, image: str) -> tuple[str, str]:
    """(version, how) of TensorRT-LLM in ``image``: its trtbuild label, else a probe container."""
    import docker.errors

    labels = client.images.get(image).labels or {}
    if labels.get(VERSION_LABEL):
        return labels[VERSION_LABEL], f"label {VERSION_LABEL}"
    try:
        out = client.containers.run(
            image,
            entrypoint=["python3", "-c", PROBE_CODE],
            remove=True,
            network_disabled=True,
            stdout=True,
            stderr=True,
        )
    except docker.errors.ContainerError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()[-1:] or [str(exc)]
        raise InputError(
            f"base image {image} has no tensorrt_llm Python distribution ({detail[0]})",
            hint="pass --base with a TensorRT-LLM serving image of the engine's version",
        ) from None
    except docker.errors.APIError as exc:
        raise RunnerUnavailable(
            f"cannot run the version probe in {image}: {exc.explanation or exc}"
        ) from None
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith(PROBE_MARK):
            return line.removeprefix(PROBE_MARK).strip(), "probe container (importlib.metadata)"
    raise InputError(
        f"the version probe in {image} printed no version", hint="pass a base image with python3"
    )


NOT_CHECKED = "not checked (--no-base-check)"


def checked_base(
    client: Any,
    image: str,
    *,
    pull: bool,
    check: Callable[[str, str], None],
    progress: Callable[[str], None],
) -> tuple[str, str, str | None]:
    """(TensorRT-LLM version, how it was read, repo digest) of the base ``image``: present (pulled when
    ``pull``), its version read and passed to ``check(version, how)`` (which refuses a mismatch) before
    anything is built. ``client`` None: this host's Docker Engine."""
    from trtbuild.bake.build import base_repo_digest

    client = client or docker_client()
    progress(f"checking TensorRT-LLM version of {image}")
    ensure_base_image(client, image, pull=pull)
    version, how = probe_base_version(client, image)
    check(version, how)
    return version, how, base_repo_digest(client, image)


def check_base_version(engine_version: str, base_image: str, base_version: str, how: str) -> None:
    """Refuse a base whose TensorRT-LLM differs from the engine's, before anything is built (the rule
    ``resolve`` applies to hosts: ``registry.compat.runtime_verdict``)."""
    from registry.api import runtime_verdict

    verdict = runtime_verdict(engine_version, base_version, f"base image {base_image} ({how})")
    if not verdict.ok:
        raise InputError(
            verdict.reason,
            hint=f"use a base with TensorRT-LLM {engine_version} (e.g. nvcr.io/nvidia/tensorrt-llm/release:"
            f"{engine_version}), or rebuild the engine with the toolchain of the base",
        )


def serving_image_version(image: str, client: Any = None) -> tuple[str, str]:
    """(TensorRT-LLM version, how it was read) of a serving image present in the Docker Engine: its trtbuild
    label, else a probe container. Never pulls (a deploy step asks about the image it runs next to)."""
    client = client or docker_client()
    try:
        ensure_image(client, image, pull=False, what="serving image")
    except ImageUnavailable:
        raise InputError(
            f"serving image {image} is not present in the Docker Engine",
            hint=f"docker pull {image} first, or pass --trtllm VERSION (the image's TensorRT-LLM version)",
        ) from None
    return probe_base_version(client, image)

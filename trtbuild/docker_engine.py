"""The Docker Engine: the one client factory (runner, bake, lock, doctor), its plain errors, image lookup
and pull, and image references pinned by digest. The docker SDK is imported when used, never at import.
"""

from __future__ import annotations

import os
from typing import Any

from registry.api import DIGEST_RE
from trtbuild.errors import ImageUnavailable, RunnerUnavailable

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
NOT_REACHABLE_FIX = (
    "start it (`sudo systemctl start docker`, or `sudo dockerd &`), make sure your user may use it "
    "(group `docker`) or set DOCKER_HOST to where it listens"
)
# what the Engine answers to a GPU request when no NVIDIA runtime / Container Toolkit hook is installed
NO_GPU_DRIVER_MARKER = 'could not select device driver "" with capabilities: [[gpu]]'
NVIDIA_RUNTIME_FIX = (
    "install the NVIDIA Container Toolkit (package nvidia-container-toolkit), then run "
    "`sudo nvidia-ctk runtime configure --runtime=docker` and restart dockerd "
    "(`sudo systemctl restart docker`)"
)


def docker_host() -> str:
    """Where the client connects: ``DOCKER_HOST``, else the local socket."""
    return os.environ.get("DOCKER_HOST", DEFAULT_DOCKER_HOST)


def docker_client() -> Any:
    """A docker SDK client, connected and answering, or RunnerUnavailable saying how to fix it."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a core dependency
        raise RunnerUnavailable(
            "the docker Python SDK is not installed", hint="pip install 'docker>=7'"
        ) from exc
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # DockerException, requests ConnectionError, PermissionError
        raise RunnerUnavailable(
            f"the Docker Engine is not reachable at {docker_host()}: {exc}", hint=NOT_REACHABLE_FIX
        ) from exc
    return client


def ensure_image(client: Any, ref: str, *, pull: bool, what: str = "image") -> Any:
    """The Engine's image ``ref``, pulled first (by digest when pinned) when it is absent and ``pull``.

    ImageUnavailable when it is absent and may not be pulled, or the pull failed (RunnerUnavailable when
    the Engine cannot even look it up); ``what`` names the image in messages ("image", "base image").
    """
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        raise RunnerUnavailable(
            f"the Docker Engine could not look up {what} {ref}: {exc.explanation or exc}"
        ) from exc
    if not pull:
        raise ImageUnavailable(
            f"{what} {ref} is not present locally",
            hint=f"`docker pull {ref}` (or `docker load` it) first, or allow pulling",
        )
    pinned = split_pinned(ref)
    try:
        if pinned:
            return client.images.pull(pinned[0], tag=pinned[1])
        return client.images.pull(ref)
    except docker.errors.DockerException as exc:
        raise ImageUnavailable(
            f"{what} {ref} is not present locally and pulling it failed: {exc}",
            hint="check the image name, that its registry is reachable and you are logged in "
            "(`docker login <registry>`), or load the image from a tarball (`docker load -i …`)",
        ) from exc


def is_no_nvidia_runtime(engine_message: str) -> bool:
    """True when the Engine refused a GPU request because it has no NVIDIA runtime."""
    return NO_GPU_DRIVER_MARKER in engine_message or "could not select device driver" in engine_message


# ---- image references ------------------------------------------------------------------------------
def split_pinned(ref: str) -> tuple[str, str] | None:
    """``repo@sha256:<hex>`` -> (repo, digest); None for a tag or anything else."""
    repo, at, digest = ref.partition("@")
    if not at or not repo or any(c.isspace() for c in repo) or not DIGEST_RE.match(digest):
        return None
    return repo, digest


def is_pinned(ref: str) -> bool:
    return split_pinned(ref) is not None

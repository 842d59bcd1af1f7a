"""Docker Engine side of ``bake``: image build with streamed progress, push. The client comes from
``trtbuild.docker_engine``; the docker SDK is imported lazily so ``trtbuild --help`` never pays for it."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trtbuild.errors import InputError, StepFailed

# repository[:tag] with an optional registry host[:port]; lowercase path components
# (Docker reference grammar).
TAG_RE = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?\Z"
)

STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")  # the legacy builder's "image of this step" line

Progress = Callable[[str], None]


def check_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise InputError(
            f"--tag {tag!r} is not a valid image reference",
            hint="use REPOSITORY:TAG, e.g. registry.example.com/llm/llama-8b:fp8-h100",
        )
    return tag


def build_image(client: Any, context: Path, tag: str, *, progress: Progress, nocache: bool = False) -> str:
    """Build ``context`` (its Dockerfile) as ``tag``; stream the builder's lines; return the image id."""
    import docker.errors

    tail: deque[str] = deque(maxlen=20)
    image_id = None
    last_step = None
    try:
        for chunk in client.api.build(
            path=str(context), tag=tag, rm=True, forcerm=True, pull=False, nocache=nocache, decode=True
        ):
            if "stream" in chunk:
                for line in chunk["stream"].splitlines():
                    step = STEP_IMAGE.match(line)
                    last_step = step.group(1) if step else last_step
                    if line.strip():
                        tail.append(line)
                        progress(line)
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                _drop_partial(client, last_step)
                raise StepFailed(f"docker build of {tag} failed: {detail.strip()}\n" + "\n".join(tail))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = aux["ID"]
    except docker.errors.APIError as exc:
        _drop_partial(client, last_step)
        raise StepFailed(f"docker build of {tag} failed: {exc.explanation or exc}") from None
    return image_id or client.images.get(tag).id


def _drop_partial(client: Any, step_image: str | None) -> None:
    """A failed build leaves its last step's image untagged, holding the engine layer (GBs); remove it and
    its untagged parents. An image that is tagged or still has children is left alone."""
    import docker.errors

    if step_image is None:
        return
    try:
        image = client.images.get(step_image)
        if not image.tags:
            client.images.remove(image.id)
    except docker.errors.APIError:
        pass


def push_image(client: Any, tag: str, *, progress: Progress) -> str | None:
    """Push ``tag``; return the registry digest the daemon reports (``sha256:...``) when it reports one."""
    import docker.errors
    from docker.utils import parse_repository_tag

    repository, image_tag = parse_repository_tag(tag)
    digest = None
    try:
        for chunk in client.api.push(repository, tag=image_tag or "latest", stream=True, decode=True):
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise StepFailed(
                    f"docker push {tag} failed: {detail}", hint="check docker login for the registry of --tag"
                )
            status = chunk.get("status")
            if status and chunk.get("id") is None:
                progress(status)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = aux["Digest"]
    except docker.errors.APIError as exc:
        raise StepFailed(f"docker push {tag} failed: {exc.explanation or exc}") from None
    return digest


def base_repo_digest(client: Any, image: str) -> str | None:
    """The base image's registry digest (``repo@sha256:...``) when the daemon knows one."""
    digests = client.images.get(image).attrs.get("RepoDigests") or []
    return digests[0] if digests else None

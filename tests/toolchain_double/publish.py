"""Build the toolchain double images and publish them to the local registry, pinned by digest.

Production pins toolchains as ``repo@sha256:<manifest digest>`` from a registry; the double is published
the same way (127.0.0.1:5000, see tests/services/local_registry.sh) so the pins are real RepoDigests.

    python3 -m tests.toolchain_double.publish [--version 1.1.0 ...]   # prints version<TAB>pinned ref
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CONTEXT = HERE / "context"
CLI_SPECS = REPO_ROOT / "trtbuild" / "data" / "cli_specs"
BASE_IMAGE = "trtbuild-test/debian-python:bookworm"
REGISTRY = "127.0.0.1:5000"
# TRTBUILD_TEST_DOUBLE_REPOSITORY publishes a changed double beside the shared one (a branch's own images).
REPOSITORY = os.environ.get("TRTBUILD_TEST_DOUBLE_REPOSITORY") or f"{REGISTRY}/trtbuild-test/toolchain-double"
# The TensorRT-LLM versions the double stands in for; each image parses the recorded CLI spec of its release
# family (trtbuild/data/cli_specs/<family>.json, e.g. 1.1.json for 1.1.0).
VERSIONS = ("1.1.0", "0.21.0")
# The double's TensorRT metadata: a version that names itself as the double's, not a real TensorRT.
TENSORRT_VERSION = "0.0.0+double"


class PublishError(RuntimeError):
    pass


def registry_up(registry: str = REGISTRY, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def spec_path(version: str) -> Path:
    """The recorded CLI spec the double of ``version`` parses with."""
    from trtbuild.recipe.cli_spec import family_for_version

    family = family_for_version(version)
    if family is None:
        raise PublishError(f"no recorded CLI spec family for TensorRT-LLM {version} in {CLI_SPECS}")
    return CLI_SPECS / f"{family}.json"


def context_digest(version: str) -> str:
    h = hashlib.sha256(f"{version}\0{TENSORRT_VERSION}\0".encode())
    for p in sorted(CONTEXT.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(CONTEXT)).encode() + b"\0" + p.read_bytes() + b"\0")
    h.update(spec_path(version).read_bytes())
    return h.hexdigest()


def build(client, version: str) -> str:
    """Build (layer cache makes a rebuild instant) and tag ``REPOSITORY:<version>``; returns the tag."""
    import docker

    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        raise PublishError(
            f"base image {BASE_IMAGE} is missing; run tests/toolchain_double/base_image.sh"
        ) from None
    tag = f"{REPOSITORY}:{version}"
    digest = context_digest(version)
    try:
        if client.images.get(tag).labels.get("org.trtbuild.recipe.toolchain-double.context") == digest:
            return tag
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="toolchain-double-ctx-") as tmp:
        ctx = Path(tmp) / "ctx"
        shutil.copytree(CONTEXT, ctx, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(spec_path(version), ctx / "cli_spec.json")
        with open(ctx / "Dockerfile", "a") as fh:
            fh.write(f'LABEL org.trtbuild.recipe.toolchain-double.context="{digest}"\n')
        try:
            client.images.build(
                path=str(ctx),
                tag=tag,
                rm=True,
                pull=False,
                buildargs={"TRTLLM_VERSION": version, "TENSORRT_VERSION": TENSORRT_VERSION},
            )
        except docker.errors.BuildError as exc:
            log = "".join(str(x.get("stream", x.get("error", ""))) for x in exc.build_log)
            raise PublishError(f"building the toolchain double {version} failed:\n{log}") from exc
    return tag


def push(client, tag: str) -> str:
    """Push ``tag`` to the local registry; return the pinned ``repo@sha256:…`` reference."""
    repo, _, version = tag.rpartition(":")
    for line in client.images.push(repo, tag=version, stream=True, decode=True):
        if "error" in line:
            raise PublishError(f"pushing {tag} failed: {line['error']}")
    image = client.images.get(tag)
    digests = [d for d in image.attrs.get("RepoDigests", []) if d.startswith(repo + "@")]
    remote = client.images.get_registry_data(tag).id
    pinned = f"{repo}@{remote}"
    if pinned not in digests:
        raise PublishError(f"registry digest {remote} of {tag} is not among the local RepoDigests {digests}")
    return pinned


def publish(versions: tuple[str, ...] = VERSIONS, client=None) -> dict[str, str]:
    """{version: "127.0.0.1:5000/trtbuild-test/toolchain-double@sha256:…"}."""
    import docker

    client = client or docker.from_env()
    if not registry_up():
        raise PublishError(
            f"no registry answers at http://{REGISTRY}/v2/; run tests/services/local_registry.sh start"
        )
    return {v: push(client, build(client, v)) for v in versions}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--version", action="append", help=f"TensorRT-LLM version to stand in for (default {VERSIONS})"
    )
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    try:
        refs = publish(tuple(a.version or VERSIONS))
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if a.json:
        print(json.dumps(refs, indent=2))
    else:
        for v, ref in refs.items():
            print(f"{v}\t{ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

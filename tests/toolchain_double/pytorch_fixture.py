"""The PyTorch-backend toolchain double (a TEST FIXTURE; the product never selects it): an image standing in
for a TensorRT-LLM release after 1.3.0rc20, published under its own repository so the shared engine doubles
(``toolchain-double:<version>``) are never rebuilt or re-tagged by these tests.

Image: ``127.0.0.1:5000/trtbuild-test/toolchain-double-pytorch:<version>``, pinned by registry digest. Its
build context is assembled here: ``pytorch/`` (Dockerfile, ``pytorch_double``), the engine double's
``trtllm_double`` (for ``nvidia-smi``), and trtbuild's ``llmapi_spec.py`` + ``trtllm_llmapi_spec.json`` under
``pytorch_double/vendor/trtbuild/`` so the stand-in ``trtllm-serve`` checks configs against the same recorded
TorchLlmArgs. The image is rebuilt only when one of those inputs changes (label with their digest).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.toolchain_double import publish
from tests.toolchain_double.fixture import unavailable

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
REPOSITORY = f"{publish.REGISTRY}/trtbuild-test/toolchain-double-pytorch"
VERSION = "1.3.0rc26"
LABEL = "org.trtbuild.recipe.toolchain-double-pytorch.context"
INPUTS = {
    "pytorch": HERE / "pytorch",
    "trtllm_double": HERE / "context" / "trtllm_double",
    "llmapi_spec.py": REPO_ROOT / "trtbuild" / "recipe" / "llmapi_spec.py",
    "trtllm_llmapi_spec.json": REPO_ROOT / "trtbuild" / "data" / "trtllm_llmapi_spec.json",
}


def context_digest(version: str) -> str:
    h = hashlib.sha256(version.encode() + b"\0")
    for name, src in INPUTS.items():
        files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
        for p in files:
            if "__pycache__" not in p.parts:
                h.update(
                    f"{name}/{p.relative_to(src) if src.is_dir() else ''}".encode() + b"\0" + p.read_bytes()
                )
    return h.hexdigest()


def assemble(ctx: Path, version: str) -> None:
    shutil.copytree(INPUTS["pytorch"], ctx, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        INPUTS["trtllm_double"], ctx / "trtllm_double", ignore=shutil.ignore_patterns("__pycache__")
    )
    vendor = ctx / "pytorch_double" / "vendor" / "trtbuild"
    for sub in ("recipe", "data"):
        (vendor / sub).mkdir(parents=True)
        (vendor / sub / "__init__.py").write_text("")
    (vendor / "__init__.py").write_text("")
    shutil.copy(INPUTS["llmapi_spec.py"], vendor / "recipe" / "llmapi_spec.py")
    shutil.copy(INPUTS["trtllm_llmapi_spec.json"], vendor / "data" / "trtllm_llmapi_spec.json")
    with open(ctx / "Dockerfile", "a") as fh:
        fh.write(f'LABEL {LABEL}="{context_digest(version)}"\n')


def build_and_push(client, version: str = VERSION) -> str:
    """Build (when its inputs changed) and push; return ``repo@sha256:…``."""
    import docker

    tag = f"{REPOSITORY}:{version}"
    try:
        current = client.images.get(tag).labels.get(LABEL) == context_digest(version)
    except docker.errors.ImageNotFound:
        current = False
    if not current:
        with tempfile.TemporaryDirectory(prefix="toolchain-double-pytorch-") as tmp:
            ctx = Path(tmp) / "ctx"
            assemble(ctx, version)
            try:
                client.images.build(
                    path=str(ctx), tag=tag, rm=True, pull=False, buildargs={"TRTLLM_VERSION": version}
                )
            except docker.errors.BuildError as exc:
                log = "".join(str(x.get("stream", x.get("error", ""))) for x in exc.build_log)
                raise publish.PublishError(f"building the PyTorch-backend double failed:\n{log}") from exc
    return publish.push(client, tag)


@pytest.fixture(scope="session")
def pytorch_double(docker_client) -> str:
    """The pinned ref of the PyTorch-backend double (1.3.0rc26)."""
    if not publish.registry_up():
        unavailable(f"no registry at http://{publish.REGISTRY}/v2/ (tests/services/local_registry.sh start)")
    try:
        docker_client.images.get(publish.BASE_IMAGE)
    except Exception:  # noqa: BLE001 - missing base image
        unavailable(f"base image {publish.BASE_IMAGE} missing (tests/toolchain_double/base_image.sh)")
    try:
        return build_and_push(docker_client)
    except publish.PublishError as exc:
        unavailable(str(exc))
        raise


def write_pytorch_toolchains_toml(path: Path, ref: str, *, pinned: bool = True) -> Path:
    """A toolchains.toml with ``[toolchain."double-<version>"]`` pinning the PyTorch-backend double."""
    from trtbuild.recipe.toolchain import load_toolchains

    real = load_toolchains(REPO_ROOT / "recipes" / "toolchains.toml")[f"trtllm-{VERSION}"]
    repo, digest = ref.split("@", 1)
    lines = [
        "# TEST toolchain: the PyTorch-backend toolchain double, never a real NVIDIA image.",
        f'[toolchain."double-{VERSION}"]',
        f'trtllm_version = "{VERSION}"',
        f'image = "{repo}:{VERSION}"',
        *([f'digest = "{digest}"'] if pinned else []),
        f'llm_api_spec = "{real.llm_api_spec}"',
        'supported_archs = ["sm80", "sm86", "sm89", "sm90"]',
        'python = "python3"',
        "",
    ]
    path.write_text("\n".join(lines))
    return path

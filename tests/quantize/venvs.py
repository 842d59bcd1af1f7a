"""Virtual environments with the ModelOpt + transformers of each pinned toolchain, for the driver's tests.

The quantize driver runs inside the pinned container against that container's ModelOpt and transformers.
Each stack here is one of those pairs (versions pinned to what the release
notes state in recipes/toolchains.toml). A venv is made with ``--system-site-packages`` so it reuses the
installed CPU torch (2.13.0) and only adds ``nvidia-modelopt==X transformers==Y`` (pip keeps torch pinned)
with ModelOpt's ``[torch]`` needs except torchvision: PyPI has no CPU torchvision for torch 2.13 (its CUDA
build fails to load against the CPU torch), so torchprofile is installed without it and a torchvision that
ModelOpt 0.33 requires outright is removed again (the driver's code paths never import it). ModelOpt
0.31-0.33 also import ``onnx`` and private ``torch.onnx`` names that torch 2.13 moved:
``torch_onnx_names.py`` (copied into the venv, loaded by a .pth) maps those names to their new place.
Every package a venv adds is pinned: the stack's own versions (``Stack.pins``, ``VENV_PINS``) over the
test environment's tests/constraints.txt, written to the venv's constraints.txt and passed with ``-c``.
Venvs are cached under ``$TRTBUILD_TEST_MODELOPT_VENVS`` (default /var/cache/trtbuild-test/modelopt-venvs)
and reused while their stamp (versions, pins, constraints, recipe) matches.

    python3 -m tests.quantize.venvs        # create every missing venv (tests/run.sh does this)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

CACHE = Path(os.environ.get("TRTBUILD_TEST_MODELOPT_VENVS", "/var/cache/trtbuild-test/modelopt-venvs"))
TORCH = "2.13.0"  # the CPU build installed by tests/run.sh; never replaced by a CUDA build from PyPI
STAMP = "trtbuild-stack.json"
# ModelOpt's [torch] extra without torchvision (and torchprofile, installed --no-deps), plus onnx: imported
# by ModelOpt 0.31-0.33's quantization package
TORCH_EXTRA_DEPS = ("pulp", "regex", "safetensors", "nvidia-ml-py", "onnx")
ONNX_NAMES = Path(__file__).with_name("torch_onnx_names.py")
TEST_CONSTRAINTS = Path(__file__).parents[1] / "constraints.txt"  # the test environment's exact versions
# Exact versions of what every stack adds besides its own pins (resolved with them; `pip check` passes but
# for ModelOpt 0.33's torchvision, removed on purpose). Bump a pin: the stamp changes, the venvs rebuild.
VENV_PINS = ("onnx==1.23.2", "protobuf==7.36.2", "ml-dtypes==0.7.0", "torchprofile==0.1.0")
VERSION = 4  # bump to rebuild every cached venv when the recipe above changes


@dataclass(frozen=True)
class Stack:
    """The ModelOpt + transformers pair of a pinned toolchain's container."""

    toolchain: str
    modelopt: str
    transformers: str
    fp8_on_cpu: bool  # ModelOpt < 0.37 simulates FP8 only through its CUDA extension
    pins: tuple[str, ...]  # exact versions of the other packages this pair needs (over VENV_PINS)

    @property
    def name(self) -> str:
        return f"mo-{self.modelopt}-tf-{self.transformers}"

    @property
    def path(self) -> Path:
        return CACHE / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


_HUB_0_X = ("huggingface-hub==0.36.2",)  # transformers 4.x needs huggingface-hub < 1.0

STACKS = (
    Stack(
        "trtllm-0.21.0",
        "0.31.0",
        "4.51.3",
        fp8_on_cpu=False,
        pins=(*_HUB_0_X, "tokenizers==0.21.4", "nvidia-modelopt-core==0.31.0"),
    ),
    Stack(
        "trtllm-1.0.0",
        "0.33.1",
        "4.53.1",
        fp8_on_cpu=False,
        pins=(*_HUB_0_X, "tokenizers==0.21.4", "nvidia-modelopt-core==0.33.1", "pillow==13.0.0"),
    ),
    Stack("trtllm-1.1.0", "0.37.0", "4.56.0", fp8_on_cpu=True, pins=(*_HUB_0_X, "tokenizers==0.22.2")),
)


def _name(requirement: str) -> str:
    """The normalized project name of a ``name==version`` line (PEP 503)."""
    return canonicalize_name(requirement.split("==", 1)[0].strip())


def constraints(stack: Stack) -> list[str]:
    """The venv's exact versions: the stack's pins, then tests/constraints.txt for every other package."""
    own = [
        f"nvidia-modelopt=={stack.modelopt}",
        f"transformers=={stack.transformers}",
        f"torch=={TORCH}",
        *VENV_PINS,
        *stack.pins,
    ]
    names = {_name(r) for r in own}
    lines = (line.split("#", 1)[0].strip() for line in TEST_CONSTRAINTS.read_text().splitlines())
    return own + [line for line in lines if line and _name(line) not in names]


def _stamp(stack: Stack) -> dict:
    return {
        "modelopt": stack.modelopt,
        "transformers": stack.transformers,
        "torch": TORCH,
        "pins": [*VENV_PINS, *stack.pins],
        # a changed tests/constraints.txt rebuilds the venvs too
        "constraints": hashlib.sha256("\n".join(constraints(stack)).encode()).hexdigest(),
        "recipe": VERSION,
    }


def ready(stack: Stack) -> bool:
    try:
        return json.loads((stack.path / STAMP).read_text()) == _stamp(stack)
    except (OSError, ValueError):
        return False


def ensure(stack: Stack, log=print) -> Path:
    """The venv's python, creating (or re-creating) the venv when it is missing or stale."""
    if ready(stack):
        return stack.python
    log(f"== creating {stack.path} (nvidia-modelopt {stack.modelopt}, transformers {stack.transformers})")
    subprocess.run(
        [sys.executable, "-m", "venv", "--clear", "--system-site-packages", str(stack.path)], check=True
    )
    pinned = stack.path / "constraints.txt"
    pinned.write_text("".join(f"{line}\n" for line in constraints(stack)))
    pip = [str(stack.python), "-m", "pip", "install", "-q", "-c", str(pinned)]
    wanted = [f"nvidia-modelopt=={stack.modelopt}", f"transformers=={stack.transformers}", f"torch=={TORCH}"]
    subprocess.run([*pip, *wanted, *TORCH_EXTRA_DEPS], check=True)
    subprocess.run([*pip, "--no-deps", "torchprofile"], check=True)
    # ModelOpt 0.33 requires torchvision outright; its PyPI (CUDA) build cannot load against the CPU torch
    subprocess.run(
        [str(stack.python), "-m", "pip", "uninstall", "-q", "-y", "torchvision"],
        check=True,
        capture_output=True,
    )
    site = Path(
        subprocess.run(
            [str(stack.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    shutil.copy(ONNX_NAMES, site / ONNX_NAMES.name)
    (site / "trtbuild_torch_onnx_names.pth").write_text(f"import {ONNX_NAMES.stem}\n")
    (stack.path / STAMP).write_text(json.dumps(_stamp(stack)))
    return stack.python


def main() -> int:
    CACHE.mkdir(parents=True, exist_ok=True)
    for stack in STACKS:
        ensure(stack)
    return 0


if __name__ == "__main__":
    sys.exit(main())

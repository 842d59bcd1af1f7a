"""Toolchain pins: a name -> the NGC image, its versions and the paths of the tools inside it.

Pins live in ``recipes/toolchains.toml`` (or a file named by ``--toolchains`` / ``TRTBUILD_TOOLCHAINS``).
An image is *pinned* only when referenced by digest (``repo@sha256:…``); a tag alone is floating and is
resolved by ``trtbuild lock``.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trtbuild.errors import ToolchainError
from trtbuild.recipe.cli_spec import SPEC_FAMILIES

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")
ARCH_RE = re.compile(r"^sm(\d{2,3})\Z")


def arch_number(arch: str) -> int:
    """``"sm90"`` -> 90."""
    match = ARCH_RE.match(arch)
    if not match:
        raise ValueError(f"not an SM arch: {arch!r}")
    return int(match.group(1))


class Toolchain(BaseModel):
    """One pinned TensorRT-LLM release image. Unknown facts stay ``None``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    trtllm_version: str
    image: str = Field(description="repo:tag or repo@sha256:digest")
    digest: str | None = None
    base_image: str | None = None
    triton_base_image: str | None = None
    serve_image: str | None = None
    tensorrt_version: str | None = None
    cuda_version: str | None = None
    pytorch_version: str | None = None
    modelopt_version: str | None = None
    transformers_version: str | None = None
    min_driver: str | None = None
    supported_archs: tuple[str, ...]
    cli_spec: str
    trtllm_build: tuple[str, ...] = ("trtllm-build",)
    python: str = "python3"
    examples_dir: str | None = None
    convert_scripts: dict[str, str] = Field(default_factory=dict)

    @field_validator("digest")
    @classmethod
    def _digest(cls, v: str | None) -> str | None:
        if v is not None and not DIGEST_RE.match(v):
            raise ValueError("must be sha256:<64 hex digits>")
        return v

    @field_validator("cli_spec")
    @classmethod
    def _family(cls, v: str) -> str:
        if v not in SPEC_FAMILIES:
            raise ValueError(f"must be one of {', '.join(SPEC_FAMILIES)}")
        return v

    @field_validator("supported_archs")
    @classmethod
    def _archs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for arch in v:
            arch_number(arch)
        return v

    @property
    def repository(self) -> str:
        """The image repository without tag or digest."""
        ref = self.image.split("@", 1)[0]
        last = ref.rsplit("/", 1)[-1]
        return ref.rsplit(":", 1)[0] if ":" in last else ref

    def pinned_ref(self, digest: str | None = None) -> str | None:
        """``repo@sha256:…`` when a digest is known (from the pin, the image ref or a lock), else None."""
        if "@" in self.image:
            return self.image
        digest = digest or self.digest
        return f"{self.repository}@{digest}" if digest else None

    @property
    def is_pinned(self) -> bool:
        return self.pinned_ref() is not None


def default_toolchains_path() -> Path:
    env = os.environ.get("TRTBUILD_TOOLCHAINS")
    if env:
        return Path(env)
    for candidate in (
        Path(__file__).resolve().parents[2] / "recipes" / "toolchains.toml",
        Path(sys.prefix) / "share" / "trtbuild" / "toolchains.toml",
    ):
        if candidate.exists():
            return candidate
    return Path("recipes/toolchains.toml")


def load_toolchains(path: Path | None = None) -> dict[str, Toolchain]:
    """Read and validate the pins file; every problem names the file, the entry and the field."""
    path = Path(path) if path else default_toolchains_path()
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ToolchainError(
            f"{path}: toolchain pins file not found", hint="pass --toolchains FILE or set TRTBUILD_TOOLCHAINS"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ToolchainError(f"{path}: not valid TOML: {exc}", hint="fix the TOML syntax") from None
    entries = data.get("toolchain")
    if not isinstance(entries, dict) or not entries:
        raise ToolchainError(f'{path}: no [toolchain."NAME"] tables', hint="add one table per pinned release")
    out: dict[str, Toolchain] = {}
    for name, body in entries.items():
        try:
            out[name] = Toolchain(name=name, **body)
        except (ValidationError, TypeError) as exc:
            problems = _describe(exc)
            raise ToolchainError(
                f"{path}: toolchain.{name}: {problems}",
                hint="correct the pin; leave unknown facts out rather than guessing",
            ) from None
    return out


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)

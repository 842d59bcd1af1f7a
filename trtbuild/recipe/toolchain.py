"""Toolchain pins: a name -> the NGC image, its versions and the paths of the tools inside it.

Pins live in ``recipes/toolchains.toml`` (or a file named by ``--toolchains`` / ``TRTBUILD_TOOLCHAINS``).
An image is *pinned* only when referenced by digest (``repo@sha256:…``); a tag alone is floating and is
resolved by ``trtbuild lock``.

Whether a release can build TensorRT engines at all is a fact of its version (``Toolchain.builds_engines``):
1.3.0rc20 is the last release with ``trtllm-build`` and ``convert_checkpoint.py`` (release v1.3.0rc20 notes).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from registry.api import DIGEST_RE, arch_number, at_least
from trtbuild.errors import ToolchainError
from trtbuild.recipe import cli_spec

# 1.3.0rc20 is the last release with the engine path (trtllm-build, convert_checkpoint.py): its release notes
# say "This RC version will be the last one supporting the TensorRT backend" (releases.md); the next release
# candidate has none. 1.2.1 is the last stable release with it.
LAST_ENGINE_RELEASE = "1.3.0rc20"
FIRST_RELEASE_WITHOUT_ENGINES = "1.3.0rc21"
LAST_STABLE_ENGINE_TOOLCHAIN = "trtllm-1.2.1"
PYTORCH_BACKEND_SINCE = "1.2.0rc0"


def builds_engines(trtllm_version: str) -> bool:
    """True when TensorRT-LLM ``trtllm_version`` still ships trtllm-build (≤ 1.3.0rc20)."""
    return Version(trtllm_version) <= Version(LAST_ENGINE_RELEASE)


class Toolchain(BaseModel):
    """One pinned TensorRT-LLM release image. Unknown facts stay ``None``.

    ``image`` is also the trtllm-serve serving image of the release (it ships trtllm-serve:
    docker/release.md), so ``bake`` needs no separate field for it. ``base_image`` and
    ``triton_base_image`` are the bases the release notes say the release and its Triton backend were
    built on, recorded as facts; neither is a serving image (the Triton TensorRT-LLM image tags are not
    verified anywhere, so ``bake --template triton`` takes ``--base``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    trtllm_version: str
    image: str = Field(description="repo:tag or repo@sha256:digest")
    digest: str | None = None
    base_image: str | None = None
    triton_base_image: str | None = None
    tensorrt_version: str | None = None
    cuda_version: str | None = None
    pytorch_version: str | None = None
    modelopt_version: str | None = None
    transformers_version: str | None = None
    min_driver: str | None = None
    supported_archs: tuple[str, ...]
    cli_spec: str | None = Field(
        default=None, description="recorded CLI spec family (engine toolchains only)"
    )
    llm_api_spec: str | None = None  # family in data/trtllm_llmapi_spec.json (the recorded TorchLlmArgs)
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

    @field_validator("trtllm_version")
    @classmethod
    def _version(cls, v: str) -> str:
        try:
            Version(v)
        except InvalidVersion:
            raise ValueError("must be a TensorRT-LLM version such as 1.2.1 or 1.3.0rc20") from None
        return v

    @field_validator("cli_spec")
    @classmethod
    def _family(cls, v: str | None) -> str | None:
        if v is not None and v not in cli_spec.families():
            raise ValueError(f"must be one of {', '.join(cli_spec.families())}")
        return v

    @model_validator(mode="after")
    def _engine_facts(self) -> Toolchain:
        if self.builds_engines and self.cli_spec is None:
            raise ValueError(
                f"cli_spec: TensorRT-LLM {self.trtllm_version} builds engines; name its recorded CLI spec "
                f"({', '.join(cli_spec.families())})"
            )
        if not self.builds_engines and self.cli_spec is not None:
            raise ValueError(
                f"cli_spec: TensorRT-LLM {self.trtllm_version} has no trtllm-build (the engine path ended "
                f"with {LAST_ENGINE_RELEASE}); remove cli_spec"
            )
        return self

    @property
    def builds_engines(self) -> bool:
        """Whether this release has trtllm-build and convert_checkpoint.py (≤ 1.3.0rc20)."""
        return builds_engines(self.trtllm_version)

    @property
    def spec_family(self) -> str:
        """The recorded CLI spec family; only engine toolchains have one (checked when loading)."""
        if self.cli_spec is None:
            raise ToolchainError(
                f"toolchain {self.name}: TensorRT-LLM {self.trtllm_version} has no trtllm-build",
                hint=f"pin an engine toolchain such as {LAST_STABLE_ENGINE_TOOLCHAIN}",
            )
        return self.cli_spec

    @field_validator("llm_api_spec")
    @classmethod
    def _llm_api_family(cls, v: str | None) -> str | None:
        from trtbuild.recipe.llmapi_spec import families

        if v is not None and v not in families():
            raise ValueError(f"must be one of {', '.join(families())}")
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

    @property
    def serves_pytorch_backend(self) -> bool:
        """TensorRT-LLM 1.2 and later serve Hugging Face checkpoints on the PyTorch backend through
        ``trtllm-serve --config`` (TensorRT-LLM PR #9104: --config aliases --extra_llm_api_options)."""
        return at_least(self.trtllm_version, PYTORCH_BACKEND_SINCE)

    @property
    def default_backend(self) -> str:
        """``engine`` where the toolchain still has trtllm-build, else ``pytorch``."""
        return "engine" if self.builds_engines else "pytorch"


def default_toolchains_path() -> Path:
    from trtbuild.settings import toolchains_path

    return toolchains_path()


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

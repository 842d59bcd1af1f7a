"""The artifact contract: what an artifact *is* (its identity, the manifest's ``metadata``) and how it was
built (its ``BuildFacts``, the catalog's provenance; never in the manifest, so identical bytes built on two
hosts share one hash).

One class per artifact kind, registered by its kind name (``KIND_TYPES``); every class derives from
``ArtifactMetadata``. Writers (the builder, ``trtbuild push``) construct these types, readers (the catalog's
columns, resolve, bake, ``show``/``ls``) get them back from ``registry.api``. A field marked ``column()``
also fills the catalog column of the same name (``registry/catalog/models.py``; a test checks both agree).
Adding a kind: subclass ``ArtifactMetadata`` (or ``ModelArtifact``), set ``kind``, decorate with
``@register``; new catalog columns need an Alembic migration.

Values are checked on construction (str, int, float, dict, list of str); unknown keys are refused when
written (``from_dict(strict=True)``) and kept aside in ``extra`` when read from an older writer.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from registry.errors import InvalidInput

COLUMN = "catalog_column"
T = TypeVar("T", bound="_Typed")


def column() -> Any:
    """A field that also fills the catalog column of the same name."""
    return field(default=None, metadata={COLUMN: True})


_FIELD_TYPES: dict[type, dict[str, tuple[type, bool]]] = {}


def _field_types(cls: type) -> dict[str, tuple[type, bool]]:
    """{field: (value type, is a catalog column)} of a contract class (``extra`` excluded)."""
    if cls in _FIELD_TYPES:
        return _FIELD_TYPES[cls]
    hints = typing.get_type_hints(cls)
    out: dict[str, tuple[type, bool]] = {}
    for f in dataclasses.fields(cls):
        if f.name == "extra":
            continue
        args = [a for a in typing.get_args(hints[f.name]) if a is not type(None)] or [hints[f.name]]
        base = typing.get_origin(args[0]) or args[0]
        out[f.name] = (base, bool(f.metadata.get(COLUMN)))
    _FIELD_TYPES[cls] = out
    return out


def _type_error(label: str, name: str, expected: type, value: Any) -> InvalidInput:
    words = {
        str: "a string",
        int: "an integer",
        float: "a number",
        dict: "an object",
        list: "a list of strings",
    }
    return InvalidInput(
        f"{label} field {name!r} must be {words.get(expected, expected.__name__)}, got {value!r}",
        hint=f"fix {name} in the {label} (see registry/metadata.py)",
    )


INT_COLUMN_MAX = 2**31 - 1  # catalog integer columns (tp, pp, max_* shapes) are 32-bit
INT64 = 2**63


def _check_value(label: str, name: str, expected: type, value: Any, column: bool = False) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    ok = isinstance(value, expected) and not (expected in (int, float) and isinstance(value, bool))
    if ok and expected is list:
        ok = all(isinstance(v, str) for v in value)
    if not ok:
        raise _type_error(label, name, expected, value)
    if expected is int and not (0 <= value <= INT_COLUMN_MAX if column else -INT64 <= value < INT64):
        raise InvalidInput(
            f"{label} field {name!r} is {str(value)[:40]}, out of range",
            hint=f"give an integer from 0 to {INT_COLUMN_MAX}" if column else "give a 64-bit integer",
        )
    return value


@dataclass(frozen=True, kw_only=True)
class _Typed:
    """Shared machinery: checked fields, ``to_dict``/``from_dict``, catalog columns."""

    # Keys an older writer stored that this contract does not know (filled by from_dict(strict=False) only).
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def label(cls) -> str:
        """How errors name this contract."""
        return "metadata"

    def __post_init__(self) -> None:
        for name, (expected, col) in _field_types(type(self)).items():
            value = getattr(self, name)
            if value is not None:
                checked = _check_value(self.label(), name, expected, value, col)
                if checked is not value:
                    object.__setattr__(self, name, checked)

    def to_dict(self) -> dict[str, Any]:
        """The non-empty fields (and any ``extra``), as stored."""
        out = {
            name: getattr(self, name) for name in _field_types(type(self)) if getattr(self, name) is not None
        }
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any], *, strict: bool = True) -> T:
        """Parse stored or user-given fields. ``strict``: unknown keys and bad values are errors; otherwise
        (reading what an older writer stored) they are kept aside in ``extra``."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{cls.label()} must be a JSON object, got {type(data).__name__}")
        types = _field_types(cls)
        unknown = sorted(k for k in data if k not in types)
        if unknown and strict:
            raise InvalidInput(
                f"{cls.label()}: unknown field {unknown[0]!r}"
                + (f" (and {len(unknown) - 1} more)" if unknown[1:] else ""),
                hint=f"known fields: {', '.join(types)}",
            )
        values: dict[str, Any] = {}
        extra = {k: data[k] for k in unknown if data[k] is not None}
        for name in types:
            value = data.get(name)
            if value is None:
                continue
            try:
                values[name] = _check_value(cls.label(), name, types[name][0], value, types[name][1])
            except InvalidInput:
                if strict:
                    raise
                extra[name] = value
        return cls(**values, extra=extra)

    @classmethod
    def column_names(cls) -> tuple[str, ...]:
        return tuple(name for name, (_t, col) in _field_types(cls).items() if col)

    def columns(self) -> dict[str, Any]:
        """The catalog column values this object fills (set fields only)."""
        return {name: getattr(self, name) for name in self.column_names() if getattr(self, name) is not None}


# -- identity: one class per kind -------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ArtifactMetadata(_Typed):
    """Base of every kind's identity. ``build_key`` is the content key of the step that produced it."""

    kind: ClassVar[str] = ""
    build_key: str | None = None

    @classmethod
    def label(cls) -> str:
        return f"{cls.kind} metadata"


@dataclass(frozen=True, kw_only=True)
class ModelArtifact(ArtifactMetadata):
    """What every artifact made from a model by a pinned toolchain records."""

    recipe_name: str | None = None
    recipe_digest: str | None = column()  # digest of the canonical recipe (ignores layout and comments)
    model_source: str | None = column()
    model_revision: str | None = column()
    dtype: str | None = column()
    quant_format: str | None = column()
    kv_cache_quant: str | None = column()
    tp: int | None = column()
    pp: int | None = column()
    toolchain: str | None = None  # the pin's name in toolchains.toml
    toolchain_image: str | None = column()  # the release image that built it (repo@sha256:... when pinned)
    trtllm_version: str | None = column()
    tensorrt_version: str | None = column()
    cuda_version: str | None = column()
    modelopt_version: str | None = column()


KIND_TYPES: dict[str, type[ArtifactMetadata]] = {}
M = TypeVar("M", bound=type[ArtifactMetadata])


def register(cls: M) -> M:
    """Make ``cls`` the contract of ``cls.kind``."""
    if not cls.kind or cls.kind in KIND_TYPES:
        raise ValueError(f"artifact kind {cls.kind!r} is empty or registered twice")
    KIND_TYPES[cls.kind] = cls
    return cls


@register
@dataclass(frozen=True, kw_only=True)
class CheckpointMetadata(ModelArtifact):
    """A TensorRT-LLM checkpoint (quantize or convert output): arch- and shape-independent."""

    kind: ClassVar[str] = "checkpoint"


@register
@dataclass(frozen=True, kw_only=True)
class EngineMetadata(ModelArtifact):
    """A TensorRT-LLM engine: fixed to an SM arch and to the shapes it was built for."""

    kind: ClassVar[str] = "engine"
    gpu_arch: str | None = column()
    max_batch_size: int | None = column()
    max_input_len: int | None = column()
    max_seq_len: int | None = column()
    max_num_tokens: int | None = column()
    max_beam_width: int | None = column()


@register
@dataclass(frozen=True, kw_only=True)
class TimingCacheMetadata(ArtifactMetadata):
    """A TensorRT timing cache, shared by the builds of one SM arch and TensorRT (or TensorRT-LLM) version."""

    kind: ClassVar[str] = "timing-cache"
    gpu_arch: str | None = column()
    tensorrt_version: str | None = column()
    trtllm_version: str | None = column()


# -- PyTorch backend (TensorRT-LLM >= 1.2; the only backend after 1.3.0rc20) -----------------------------
# How resolve judges these kinds for a host and how AutoTuner caches are matched: registry/resolve_pytorch.py.
@register
@dataclass(frozen=True, kw_only=True)
class HfCheckpointMetadata(ModelArtifact):
    """A unified Hugging Face checkpoint (ModelOpt ``export_hf_checkpoint``: safetensors +
    ``hf_quant_config.json``), or the unquantized model. Not split by TP/PP (``tp``/``pp`` stay unset) and
    tied to no GPU beyond what its format needs (``min_gpu_arch``: sm89 for FP8 weights or an FP8 KV cache).
    The model dims let resolve estimate the KV cache of a serve config."""

    kind: ClassVar[str] = "hf-checkpoint"
    quant_algo: str | None = None  # hf_quant_config.json "quant_algo"
    kv_cache_quant_algo: str | None = None
    min_gpu_arch: str | None = None
    architecture: str | None = None
    num_hidden_layers: int | None = None
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    max_position_embeddings: int | None = None
    weights_bytes: int | None = None

    def kv_bytes_per_token(self, kv_cache_quant: str | None = None) -> int | None:
        """K and V of every layer for one token, all ranks together (None when the dims are not recorded):
        1 byte per element for an FP8 KV cache, else 2 (the model's 16-bit dtype)."""
        layers, kv_heads, head_dim = self.num_hidden_layers, self.num_key_value_heads, self.head_dim
        if layers is None or kv_heads is None or head_dim is None:
            return None
        return (
            2 * layers * kv_heads * head_dim * (1 if (kv_cache_quant or self.kv_cache_quant) == "fp8" else 2)
        )


@register
@dataclass(frozen=True, kw_only=True)
class ServeConfigMetadata(ModelArtifact):
    """The LLM-API YAML of ``trtllm-serve --config`` for one checkpoint (``checkpoint``, an artifact hash),
    checked against the TorchLlmArgs of ``trtllm_version`` (``llm_api_spec`` @ ``llm_api_commit``) and
    written for ``gpu_arch``'s family. ``tp``/``pp`` are the serving layout; the memory facts
    (``weights_bytes``, ``kv_bytes_per_token`` × ``kv_tokens``) are what resolve checks against a host."""

    kind: ClassVar[str] = "serve-config"
    checkpoint: str | None = None
    checkpoint_build_key: str | None = None
    llm_api_spec: str | None = None
    llm_api_commit: str | None = None
    gpu_arch: str | None = column()
    min_gpu_arch: str | None = None
    max_batch_size: int | None = column()
    max_seq_len: int | None = column()
    max_num_tokens: int | None = column()
    weights_bytes: int | None = None
    kv_bytes_per_token: int | None = None
    kv_tokens: int | None = None
    kv_tokens_from: str | None = None  # where kv_tokens comes from (kv_cache_config.max_tokens, max_seq_len)


@register
@dataclass(frozen=True, kw_only=True)
class AutotunerCacheMetadata(ArtifactMetadata):
    """Files TensorRT-LLM's AutoTuner wrote under ``TLLM_AUTOTUNER_CACHE_PATH`` on one GPU host. Upstream
    loads a cache without checking where it came from, so it is keyed (``build_key``) by GPU name, SM,
    TensorRT-LLM version, tp, model (the checkpoint hash) and quantization, and handed only to an exact
    match."""

    kind: ClassVar[str] = "autotuner-cache"
    gpu_name: str | None = column()
    gpu_arch: str | None = column()
    trtllm_version: str | None = column()
    tp: int | None = column()
    model: str | None = None
    quant_format: str | None = column()
    kv_cache_quant: str | None = column()
    cache_file: str | None = None  # the file TLLM_AUTOTUNER_CACHE_PATH named, relative to the artifact


def metadata_type(kind: str) -> type[ArtifactMetadata]:
    try:
        return KIND_TYPES[kind]
    except KeyError:
        raise InvalidInput(
            f"invalid artifact kind {kind!r}", hint=f"use one of: {', '.join(KIND_TYPES)}"
        ) from None


def parse_metadata(kind: str, data: Mapping[str, Any], *, strict: bool = True) -> ArtifactMetadata:
    return metadata_type(kind).from_dict(data, strict=strict)


# -- build facts ------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class BuildFacts(_Typed):
    """How one build went: the catalog's provenance of an artifact (any kind; unset facts stay None)."""

    @classmethod
    def label(cls) -> str:
        return "provenance"

    host: str | None = column()
    gpu_name: str | None = column()
    driver_version: str | None = column()
    build_seconds: float | None = column()
    verification: dict[str, Any] | None = column()  # trtbuild.build.verify report of an engine
    fingerprint: dict[str, Any] | None = None  # trtbuild.host.fingerprint of the build host
    steps_run: list[str] | None = None
    checkpoint_key: str | None = None  # an engine's: the checkpoint it was built from
    farm_job: str | None = None  # the scheduler job that ran the build (trtbuild farm): its log is there


def catalog_columns(metadata: ArtifactMetadata, facts: BuildFacts) -> dict[str, Any]:
    """The catalog column values of an artifact: its identity's, then its build facts'."""
    return {**metadata.columns(), **facts.columns()}


def all_column_names() -> set[str]:
    """Every catalog column some registered contract fills."""
    names = set(BuildFacts.column_names())
    for cls in KIND_TYPES.values():
        names.update(cls.column_names())
    return names

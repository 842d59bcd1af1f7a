"""What a baked image needs to know about an engine: read from its ``config.json`` and checked against
the registry metadata, so a serving config can never promise more than the engine was built for.

Engine layout (TensorRT-LLM's ``Engine.save`` in ``tensorrt_llm/builder.py``): ``config.json`` =
``{"version", "pretrained_config", "build_config"}`` written by rank 0, plus one ``rank{N}.engine`` per rank. trtbuild stores the
tokenizer files of the model in a ``tokenizer/`` subdirectory of the artifact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.errors import InputError

if TYPE_CHECKING:
    from registry.api import EngineMetadata

TOKENIZER_SUBDIR = "tokenizer"

# Recipe fields a user changes to rebuild an engine that can honour a larger runtime value.
REBUILD_FIELDS: dict[str, str] = {
    "max_batch_size": "limits.max_batch_size",
    "max_beam_width": "limits.max_beam_width",
}


@dataclass(frozen=True)
class EngineInfo:
    """Facts the engine fixed at build time (``build_config`` and ``pretrained_config.mapping``)."""

    engine_dir: Path
    trtllm_version: str
    max_batch_size: int
    max_beam_width: int
    tp: int
    pp: int
    max_num_tokens: int | None = None
    max_seq_len: int | None = None
    max_input_len: int | None = None
    architecture: str | None = None
    dtype: str | None = None
    quant_algo: str | None = None
    rank_files: tuple[str, ...] = field(default_factory=tuple)

    @property
    def world_size(self) -> int:
        return self.tp * self.pp


def _int(value: Any, where: str, config: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(
            f"{config}: {where} must be a positive integer (got {value!r})",
            hint="the engine directory is not a complete trtllm-build output; rebuild it",
        )
    return value


def read_engine(engine_dir: Path) -> EngineInfo:
    """Parse ``engine_dir/config.json`` and check that every rank's engine file is present."""
    engine_dir = Path(engine_dir)
    config = engine_dir / "config.json"
    try:
        data = json.loads(config.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{config}: not found; {engine_dir} is not a TensorRT-LLM engine directory",
            hint="pass the directory trtllm-build wrote (config.json + rank<N>.engine)",
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{config}: not valid JSON ({exc})", hint="re-pull the artifact; it is damaged"
        ) from None
    if not isinstance(data, dict) or not {"version", "pretrained_config", "build_config"} <= data.keys():
        raise InputError(
            f"{config}: expected the keys version, pretrained_config and build_config",
            hint="this is a checkpoint or an engine from an unsupported TensorRT-LLM; bake engines only",
        )
    version = data["version"]
    if not isinstance(version, str) or not version:
        raise InputError(
            f"{config}: version must be the TensorRT-LLM version string (got {version!r})",
            hint="rebuild the engine with a pinned toolchain",
        )
    build = data["build_config"] or {}
    pretrained = data["pretrained_config"] or {}
    mapping = pretrained.get("mapping") or {}
    tp = _int(mapping.get("tp_size", 1), "pretrained_config.mapping.tp_size", config)
    pp = _int(mapping.get("pp_size", 1), "pretrained_config.mapping.pp_size", config)
    ranks = tuple(f"rank{r}.engine" for r in range(tp * pp))
    missing = [name for name in ranks if not (engine_dir / name).is_file()]
    if missing:
        raise InputError(
            f"{engine_dir}: missing {', '.join(missing)} (tp={tp} x pp={pp} needs {tp * pp} ranks)",
            hint="re-pull the artifact; an engine directory must hold every rank",
        )
    quant = pretrained.get("quantization") or {}

    def opt_int(key: str) -> int | None:
        value = build.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return EngineInfo(
        engine_dir=engine_dir,
        trtllm_version=version,
        max_batch_size=_int(build.get("max_batch_size"), "build_config.max_batch_size", config),
        max_beam_width=_int(build.get("max_beam_width", 1), "build_config.max_beam_width", config),
        tp=tp,
        pp=pp,
        max_num_tokens=opt_int("max_num_tokens"),
        max_seq_len=opt_int("max_seq_len"),
        max_input_len=opt_int("max_input_len"),
        architecture=pretrained.get("architecture"),
        dtype=pretrained.get("dtype"),
        quant_algo=quant.get("quant_algo"),
        rank_files=ranks,
    )


def check_metadata(info: EngineInfo, metadata: EngineMetadata) -> None:
    """The registry's metadata and the engine's own config.json must agree on everything both record."""
    from registry.api import same_version

    problems = []
    meta_version = metadata.trtllm_version
    if meta_version is not None and not same_version(str(meta_version), info.trtllm_version):
        problems.append(
            f"trtllm_version: registry says {meta_version!r}, config.json says {info.trtllm_version!r}"
        )
    for key, engine_value in (
        ("max_batch_size", info.max_batch_size),
        ("max_beam_width", info.max_beam_width),
        ("tp", info.tp),
        ("pp", info.pp),
    ):
        meta_value = getattr(metadata, key)
        if meta_value is not None and meta_value != engine_value:
            problems.append(f"{key}: registry says {meta_value!r}, config.json says {engine_value!r}")
    if problems:
        raise InputError(
            f"{info.engine_dir}: the artifact metadata disagrees with the engine: " + "; ".join(problems),
            hint="the catalog row does not describe these bytes; re-publish the engine with trtbuild",
        )


def check_runtime_limit(info: EngineInfo, name: str, requested: int | None) -> int:
    """A runtime value defaults to the engine's; a larger one than the engine was built for is refused."""
    built = getattr(info, name)
    if requested is None:
        return built
    if requested < 1:
        raise InputError(f"{name} must be >= 1 (got {requested})", hint=f"pass a value between 1 and {built}")
    if requested > built:
        raise InputError(
            f"{name}={requested} exceeds what the engine was built for ({name}={built}); "
            "TensorRT fixed it at build time and the runtime cannot go beyond it",
            hint=f"rebuild with {REBUILD_FIELDS.get(name, name)} = {requested} in the recipe, "
            f"or serve with {name} <= {built}",
        )
    return requested

"""What a baked image needs to know about an engine: read from its ``config.json`` and checked against
the registry metadata, so a serving config can never promise more than the engine was built for.

Engine layout (TensorRT-LLM's ``Engine.save`` in ``tensorrt_llm/builder.py``): ``config.json`` =
``{"version", "pretrained_config", "build_config"}`` written by rank 0, plus one ``rank{N}.engine`` per rank.
trtbuild stores the tokenizer files of the model in a ``tokenizer/`` subdirectory of the artifact.
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


MAX_RANKS = 1024  # tp x pp of any engine trtllm-build writes is far below this


def _int(value: Any, where: str, config: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(
            f"{config}: {where} must be a positive integer (got {str(value)[:64]!r})",
            hint="the engine directory is not a complete trtllm-build output; rebuild it",
        )
    return value


MAX_CONFIG_BYTES = 16 << 20
MAX_MISSING_SHOWN = 4


def _table(value: Any, where: str, config: Path) -> dict[str, Any]:
    """A JSON object field of config.json (absent or null: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(
            f"{config}: {where} must be a JSON object, not {type(value).__name__}",
            hint="the engine directory is not a complete trtllm-build output; rebuild it",
        )
    return value


def _opt_str(value: Any, where: str, config: Path) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InputError(
        f"{config}: {where} must be a string, not {type(value).__name__}",
        hint="the engine directory is not a complete trtllm-build output; rebuild it",
    )


def _load_config(engine_dir: Path, config: Path) -> Any:
    try:
        if config.stat().st_size > MAX_CONFIG_BYTES:
            raise InputError(f"{config}: larger than {MAX_CONFIG_BYTES} bytes; not an engine config")
        return json.loads(config.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{config}: not found; {engine_dir} is not a TensorRT-LLM engine directory",
            hint="pass the directory trtllm-build wrote (config.json + rank<N>.engine)",
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise InputError(
            f"{config}: not valid JSON ({why})", hint="re-pull the artifact; it is damaged"
        ) from None
    except OSError as exc:
        raise InputError(
            f"{config}: cannot read: {exc.strerror}", hint="pass a readable engine directory"
        ) from None


def read_engine(engine_dir: Path) -> EngineInfo:
    """Parse ``engine_dir/config.json`` and check that every rank's engine file is present."""
    engine_dir = Path(engine_dir)
    config = engine_dir / "config.json"
    data = _load_config(engine_dir, config)
    if not isinstance(data, dict) or not {"version", "pretrained_config", "build_config"} <= data.keys():
        raise InputError(
            f"{config}: expected the keys version, pretrained_config and build_config",
            hint="this is a checkpoint or an engine from an unsupported TensorRT-LLM; bake engines only",
        )
    version = data["version"]
    if not isinstance(version, str) or not version or len(version) > 64:
        raise InputError(
            f"{config}: version must be the TensorRT-LLM version string (got {str(version)[:64]!r})",
            hint="rebuild the engine with a pinned toolchain",
        )
    build = _table(data["build_config"], "build_config", config)
    pretrained = _table(data["pretrained_config"], "pretrained_config", config)
    mapping = _table(pretrained.get("mapping"), "pretrained_config.mapping", config)
    tp = _int(mapping.get("tp_size", 1), "pretrained_config.mapping.tp_size", config)
    pp = _int(mapping.get("pp_size", 1), "pretrained_config.mapping.pp_size", config)
    if tp * pp > MAX_RANKS:
        raise InputError(
            f"{config}: tp_size x pp_size = {tp * pp}, more than {MAX_RANKS} ranks",
            hint="the engine directory is not a complete trtllm-build output; rebuild it",
        )
    ranks = tuple(f"rank{r}.engine" for r in range(tp * pp))
    missing = [name for name in ranks if not (engine_dir / name).is_file()]
    if missing:
        shown = ", ".join(missing[:MAX_MISSING_SHOWN])
        more = f" and {len(missing) - MAX_MISSING_SHOWN} more" if len(missing) > MAX_MISSING_SHOWN else ""
        raise InputError(
            f"{engine_dir}: missing {shown}{more} (tp={tp} x pp={pp} needs {tp * pp} ranks)",
            hint="re-pull the artifact; an engine directory must hold every rank",
        )
    quant = _table(pretrained.get("quantization"), "pretrained_config.quantization", config)

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
        architecture=_opt_str(pretrained.get("architecture"), "pretrained_config.architecture", config),
        dtype=_opt_str(pretrained.get("dtype"), "pretrained_config.dtype", config),
        quant_algo=_opt_str(quant.get("quant_algo"), "pretrained_config.quantization.quant_algo", config),
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

"""Every ``TRTBUILD_*`` setting: read here and nowhere else, with its default and meaning (``SETTINGS``,
also the README's Configuration table), plus trtbuild's cache tree.

The registry reads no environment: ``open_registry`` hands it the URLs, the store tuning and the hash
cache computed here. Stdlib only at import time: the in-container quantize driver imports the
``TRTBUILD_QUANT_*`` names from this module (it reads their values through ``trtbuild.quantize.options``,
which the driver shares with the builder that writes them into the step's environment).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.api import Registry, StoreTuning


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    meaning: str


HOME = "TRTBUILD_HOME"
DB_URL = "TRTBUILD_DB_URL"
STORE_URL = "TRTBUILD_STORE_URL"
DB_TIMEOUT = "TRTBUILD_DB_TIMEOUT"
TOOLCHAINS = "TRTBUILD_TOOLCHAINS"
DOCKERFILES = "TRTBUILD_DOCKERFILES"
HASH_CACHE = "TRTBUILD_HASH_CACHE"
LOCAL_FSYNC = "TRTBUILD_LOCAL_FSYNC"
S3_THREADS = "TRTBUILD_S3_THREADS"
S3_PART_MIB = "TRTBUILD_S3_PART_MIB"
S3_TARGET_GBPS = "TRTBUILD_S3_TARGET_GBPS"
S3_MULTIPART_MIB = "TRTBUILD_S3_MULTIPART_MIB"
S3_STAGED_PUSH = "TRTBUILD_S3_STAGED_PUSH"
FARM_STATE = "TRTBUILD_FARM_STATE"
FARM_JOB = "TRTBUILD_FARM_JOB"
GPU_DEVICES = "TRTBUILD_GPU_DEVICES"
# Read by the quantize driver inside the toolchain container (the builder sets them in the step's env).
QUANT_ACCURACY_GATE = "TRTBUILD_QUANT_ACCURACY_GATE"
QUANT_MIN_TOP1 = "TRTBUILD_QUANT_MIN_TOP1"
QUANT_MAX_KL = "TRTBUILD_QUANT_MAX_KL"
QUANT_GATE_PROMPTS = "TRTBUILD_QUANT_GATE_PROMPTS"
QUANT_GATE_TOKENS = "TRTBUILD_QUANT_GATE_TOKENS"
QUANT_MAX_GPU_MEMORY_GIB = "TRTBUILD_QUANT_MAX_GPU_MEMORY_GIB"
QUANT_CPU_OFFLOAD = "TRTBUILD_QUANT_CPU_OFFLOAD"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        HOME,
        "`$XDG_CACHE_HOME/trtbuild`, else `~/.cache/trtbuild`",
        "trtbuild's cache tree (`<cache>`): step outputs under `work/`, the default catalog and store, "
        "the file-digest cache, compiled torch extensions",
    ),
    Setting(
        DB_URL,
        "`sqlite:///<cache>/registry.db`",
        "the catalog: `sqlite:///FILE` or `postgresql+psycopg://user@host/db` (`--db-url`)",
    ),
    Setting(
        STORE_URL,
        "`file://<cache>/store`",
        "the blob store: `file:///DIR` or `s3://bucket/prefix[?endpoint=URL]` (`--store-url`)",
    ),
    Setting(
        DB_TIMEOUT,
        "`30`",
        "seconds one PostgreSQL catalog call may take: a frozen or unreachable server fails the command "
        "after this (plus at most min(10, it) s to reconnect) instead of hanging",
    ),
    Setting(TOOLCHAINS, "`recipes/toolchains.toml`", "the toolchain pins file (`--toolchains`)"),
    Setting(
        DOCKERFILES,
        "`dockerfiles/` of the installed trtbuild",
        "the directory of the `bake` templates (`*.Dockerfile.j2`)",
    ),
    Setting(HASH_CACHE, "`1`", "`0` disables the stat-keyed file-digest cache `<cache>/hashcache.db`"),
    Setting(LOCAL_FSYNC, "`1`", "`0`: a file:// store does not fsync blobs before publishing them"),
    Setting(S3_THREADS, "`10`", "parallel S3 requests per transfer"),
    Setting(S3_PART_MIB, "`64`", "S3 multipart part size, MiB"),
    Setting(
        S3_TARGET_GBPS, "`10`", "S3 throughput target of the CRT client, Gb/s (sets its connection count)"
    ),
    Setting(S3_MULTIPART_MIB, "`64`", "files below this size (MiB) go to S3 in one PUT"),
    Setting(
        S3_STAGED_PUSH,
        "`1`",
        "`0`: hash every file before uploading (no upload of a blob the store already has, "
        "no overlap of hashing and upload)",
    ),
    Setting(
        FARM_STATE,
        "`<cache>/farm/state.json`",
        "`trtbuild farm`'s job table (engine key → scheduler job); scripts and logs go beside it",
    ),
    Setting(
        FARM_JOB,
        "unset",
        "set by farm jobs: the scheduler job a build runs in, recorded in the engine's provenance",
    ),
    Setting(
        GPU_DEVICES,
        "unset",
        "set by Slurm farm jobs (`$SLURM_JOB_GPUS`): the GPU ids Docker build containers get",
    ),
    Setting(
        QUANT_ACCURACY_GATE,
        "`1`",
        "quantize step: `0` measures and reports the accuracy gate without failing "
        "(`build --no-accuracy-gate`)",
    ),
    Setting(
        QUANT_MIN_TOP1, "per format", "quantize step: minimum top-1 agreement with the unquantized model"
    ),
    Setting(QUANT_MAX_KL, "per format", "quantize step: maximum mean KL divergence, nats"),
    Setting(QUANT_GATE_PROMPTS, "`16`", "quantize step: held-out prompts the accuracy gate compares"),
    Setting(QUANT_GATE_TOKENS, "`32`", "quantize step: tokens per held-out prompt"),
    Setting(
        QUANT_MAX_GPU_MEMORY_GIB,
        "free memory less a reserve",
        "quantize step: GiB of each GPU the weights may take while calibrating "
        "(`quantization.max_gpu_memory_gib`)",
    ),
    Setting(
        QUANT_CPU_OFFLOAD,
        "`0`",
        "quantize step: `1` puts layers that do not fit the GPUs in host memory (`quantization.cpu_offload`)",
    ),
)


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _env_flag(name: str, default: bool = True) -> bool:
    value = _env(name)
    return default if value is None else value != "0"


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


# -- the cache tree --------------------------------------------------------------------------------------
def cache_home() -> Path:
    """``$TRTBUILD_HOME``, else ``$XDG_CACHE_HOME/trtbuild``, else ``~/.cache/trtbuild``."""
    home = _env(HOME)
    if home:
        return Path(home).expanduser()
    xdg = _env("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "trtbuild"


def ensure_home() -> Path:
    """The cache tree, created when missing; an InputError naming the path when it cannot be written
    (never a database error further on)."""
    from trtbuild.errors import InputError

    home = cache_home()
    fix = f"make it writable, or set {HOME} to a writable directory"
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the trtbuild home {home} ({HOME}): {exc.strerror}", hint=fix
        ) from None
    if not os.access(home, os.W_OK | os.X_OK):
        raise InputError(f"the trtbuild home {home} ({HOME}) is not writable", hint=fix)
    return home


def work_root() -> Path:
    """Step outputs: models, checkpoints, engines and logs, one folder per content key."""
    return cache_home() / "work"


def torch_extensions_dir() -> Path:
    """ModelOpt's compiled CUDA extensions, kept between quantize runs."""
    return cache_home() / "torch-extensions"


def hash_cache_path() -> Path | None:
    """The file-digest cache, or None when ``TRTBUILD_HASH_CACHE=0``."""
    return cache_home() / "hashcache.db" if _env_flag(HASH_CACHE) else None


# -- the build farm --------------------------------------------------------------------------------------
def farm_state_path() -> Path:
    """``trtbuild farm``'s job table: ``$TRTBUILD_FARM_STATE``, else ``<cache>/farm/state.json``."""
    explicit = _env(FARM_STATE)
    return Path(explicit).expanduser() if explicit else cache_home() / "farm" / "state.json"


def farm_job() -> str | None:
    """The scheduler job this build runs in (set by farm job scripts and manifests)."""
    return _env(FARM_JOB)


def gpu_devices() -> list[str]:
    """GPUs a scheduler allocated to this build (comma-separated ids): Docker containers get exactly
    these devices. Empty: no allocation, containers ask for a GPU count."""
    return [d.strip() for d in (_env(GPU_DEVICES) or "").split(",") if d.strip()]


# -- the registry ----------------------------------------------------------------------------------------
def db_url(explicit: str | None = None) -> str:
    """``--db-url``, else ``$TRTBUILD_DB_URL``, else SQLite in the cache tree."""
    return explicit or _env(DB_URL) or f"sqlite:///{cache_home() / 'registry.db'}"


def store_url(explicit: str | None = None) -> str:
    """``--store-url``, else ``$TRTBUILD_STORE_URL``, else a directory in the cache tree."""
    return explicit or _env(STORE_URL) or f"file://{cache_home() / 'store'}"


def db_timeout_s() -> float:
    """``$TRTBUILD_DB_TIMEOUT`` seconds (> 0), else 30."""
    try:
        value = float(_env(DB_TIMEOUT) or 30)
    except ValueError:
        return 30.0
    return value if value > 0 else 30.0


def store_tuning() -> StoreTuning:
    from registry.api import StoreTuning

    return StoreTuning(
        s3_threads=_env_int(S3_THREADS, 10),
        s3_part_mib=_env_int(S3_PART_MIB, 64),
        s3_target_gbps=float(_env_int(S3_TARGET_GBPS, 10)),
        s3_multipart_mib=_env_int(S3_MULTIPART_MIB, 64),
        s3_staged_push=_env_flag(S3_STAGED_PUSH),
        local_fsync=_env_flag(LOCAL_FSYNC),
    )


def open_registry(db: str | None = None, store: str | None = None) -> Registry:
    """The registry this process uses: explicit URLs, else the settings above. The default locations live
    in the trtbuild home, created here; explicit ones must exist (nothing is created silently)."""
    from registry.api import Registry

    if not (db or _env(DB_URL)) or not (store or _env(STORE_URL)):
        ensure_home()
    return Registry.open(
        db_url(db),
        store_url(store),
        tuning=store_tuning(),
        hash_cache=hash_cache_path(),
        db_timeout_s=db_timeout_s(),
    )


def open_existing_registry(db: str | None = None, store: str | None = None) -> Registry | None:
    """``open_registry``, or None when its catalog is a SQLite file that does not exist yet: a question
    about the registry (plan, dry run) creates nothing."""
    url = db_url(db)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    return open_registry(db, store)


# -- files trtbuild reads --------------------------------------------------------------------------------
def toolchains_path() -> Path:
    """``$TRTBUILD_TOOLCHAINS``, else the pins of the source tree, else those installed with trtbuild."""
    env = _env(TOOLCHAINS)
    if env:
        return Path(env)
    for candidate in (
        Path(__file__).resolve().parents[1] / "recipes" / "toolchains.toml",
        Path(sys.prefix) / "share" / "trtbuild" / "toolchains.toml",
    ):
        if candidate.exists():
            return candidate
    return Path("recipes/toolchains.toml")


def dockerfiles_candidates() -> list[Path]:
    """``$TRTBUILD_DOCKERFILES``, else ``dockerfiles/`` of the source tree trtbuild runs from, of the
    installed data files, or of the current directory (a CI job in a checkout after ``pip install .``)."""
    env = _env(DOCKERFILES)
    if env:
        return [Path(env)]
    return [
        Path(__file__).resolve().parents[1] / "dockerfiles",
        Path(sys.prefix) / "share/trtbuild/dockerfiles",
        Path.cwd() / "dockerfiles",
    ]

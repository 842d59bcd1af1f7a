"""Warm-start AutoTuner caches as registry artifacts (kind ``autotuner-cache``).

TensorRT-LLM's PyTorch backend loads ``TLLM_AUTOTUNER_CACHE_PATH`` at warm-up and saves it after (PR #7738,
1.2.0rc0); the file records the library version and the device, but loading overwrites them instead of
checking them, so a cache from another GPU or release is applied silently. trtbuild therefore stores a cache
under the key (GPU name, SM, TensorRT-LLM version, tp, model, quantization) and hands it out only on an exact
match.

On a GPU host, with the serving image of a serve config (or its checkpoint + config)::

    mkdir -p /tmp/tune && TLLM_AUTOTUNER_CACHE_PATH=/tmp/tune/autotuner_cache.json \\
        trtllm-serve CHECKPOINT --config config.yaml     # warm up; stop it once it answers /health
    trtbuild autotuner capture NAME:TAG /tmp/tune        # GPU name + SM from nvidia-smi, version installed

Every file the server wrote in that directory is kept (rank-specific files included) and the variable is
pointed at the same file name when the cache is used.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from registry.api import (
    AutotunerCacheMetadata,
    BuildFacts,
    ServeConfigMetadata,
    autotuner_key,
    autotuner_mismatch,
)
from trtbuild.errors import InputError

AUTOTUNER_CACHE = AutotunerCacheMetadata.kind
DEFAULT_CACHE_FILE = "autotuner_cache.json"


def cache_name(serve: ServeConfigMetadata) -> str:
    return f"{serve.recipe_name}-autotuner"


def _serve_meta(art: Any) -> ServeConfigMetadata:
    if not isinstance(art.metadata, ServeConfigMetadata) or not art.metadata.checkpoint:
        raise InputError(
            f"{art.hash} is a {art.kind}, not a serve config",
            hint="name the serve config (what `trtbuild build` returned for a pytorch recipe)",
        )
    return art.metadata


def _quant(serve: ServeConfigMetadata) -> tuple[str, str]:
    return serve.quant_format or "none", serve.kv_cache_quant or "none"


def capture(
    reg: Any,
    serve_ref: str,
    cache_dir: Path,
    *,
    gpu_name: str,
    gpu_arch: str,
    trtllm_version: str,
    cache_file: str = DEFAULT_CACHE_FILE,
) -> Any:
    """Publish the AutoTuner files in ``cache_dir`` for the serve config ``serve_ref`` on this GPU."""
    serve = _serve_meta(reg.get(serve_ref))
    if not (cache_dir / cache_file).is_file() and not any(cache_dir.glob(f"{Path(cache_file).stem}*")):
        raise InputError(
            f"{cache_dir}: no {cache_file} (nor rank files of it)",
            hint=f"run trtllm-serve with TLLM_AUTOTUNER_CACHE_PATH={cache_dir / cache_file} until it is warm",
        )
    if trtllm_version != serve.trtllm_version:
        raise InputError(
            f"this host runs TensorRT-LLM {trtllm_version}; the serve config is for {serve.trtllm_version}",
            hint="capture the cache with the TensorRT-LLM release the config was checked against",
        )
    tp, model, quant = serve.tp or 1, str(serve.checkpoint), _quant(serve)
    meta = AutotunerCacheMetadata(
        build_key=autotuner_key(gpu_name, gpu_arch, trtllm_version, tp, model, *quant),
        gpu_name=gpu_name,
        gpu_arch=gpu_arch,
        trtllm_version=trtllm_version,
        tp=tp,
        model=model,
        quant_format=quant[0],
        kv_cache_quant=quant[1],
        cache_file=cache_file,
    )
    facts = BuildFacts(host=socket.gethostname(), gpu_name=gpu_name)
    return reg.push(cache_dir, name=cache_name(serve), metadata=meta, provenance=facts)


def cache_for_host(
    reg: Any, serve_ref: str, *, gpu_name: str | None, gpu_arch: str | None, trtllm_version: str | None
) -> tuple[Any | None, list[str]]:
    """(the cache captured on exactly this kind of host, or None; why each other cache does not fit)."""
    serve = _serve_meta(reg.get(serve_ref))
    tp, model = serve.tp or 1, str(serve.checkpoint)
    if gpu_name and gpu_arch and trtllm_version:
        key = autotuner_key(gpu_name, gpu_arch, trtllm_version, tp, model, *_quant(serve))
        hit = reg.find_by_build_key(key, AUTOTUNER_CACHE)
        if hit is not None:
            return hit, []
    reasons = []
    for art in reg.list(name=cache_name(serve), kind=AUTOTUNER_CACHE):
        why = autotuner_mismatch(art.metadata, gpu_name, gpu_arch, trtllm_version, tp, model)
        reasons.append(f"{art.hash[:19]}: {'; '.join(why) or 'quantization differs'}")
    return None, reasons


def caches_for(reg: Any, serve_art: Any) -> list[tuple[AutotunerCacheMetadata, str]]:
    """Every cache usable with this serve config on some GPU: newest per (GPU name, SM). The image's
    selector then hands each only to its own GPU."""
    serve = _serve_meta(serve_art)
    want = (serve.trtllm_version, serve.tp or 1, serve.checkpoint, *_quant(serve))
    out: dict[tuple[str, str], tuple[AutotunerCacheMetadata, str]] = {}
    for art in reg.list(name=cache_name(serve), kind=AUTOTUNER_CACHE):  # newest first
        meta = art.metadata
        have = (meta.trtllm_version, meta.tp, meta.model, meta.quant_format, meta.kv_cache_quant)
        if have == want and meta.gpu_name and meta.gpu_arch:
            out.setdefault((meta.gpu_name, meta.gpu_arch), (meta, art.hash))
    return list(out.values())

"""How resolve judges the PyTorch-backend kinds for a host, and how AutoTuner caches are matched.

The kinds themselves (``hf-checkpoint``, ``serve-config``, ``autotuner-cache``) are classes of the one
artifact contract, ``registry/metadata.py``. Here:

- ``evaluate_serve_config``: a serve config (with its checkpoint) fits a host when the host's SM is of the
  arch family the config was written for and at least what the checkpoint's format needs (FP8: sm89), the
  host runs the TensorRT-LLM version the config was checked against, has tp × pp GPUs, and each GPU holds
  its share of the weights + the KV-cache estimate + a margin; every failed constraint says why.
- ``autotuner_key`` / ``autotuner_mismatch``: a cache is reused only where GPU name, SM, TensorRT-LLM
  version, tp, model and quantization are all equal; an unknown host fact is a mismatch, not a guess.
"""

from __future__ import annotations

from registry.canonical import digest_of
from registry.compat import runtime_verdict
from registry.metadata import AutotunerCacheMetadata, HfCheckpointMetadata, ServeConfigMetadata
from registry.resolve import GIB, MARGIN_FRACTION, MARGIN_MIN_GIB, HostFacts, Verdict
from registry.versions import arch_family, normalize_arch, sm_number

FP8_MIN_ARCH = "sm89"


def _min_arch_failure(min_arch: str | None, host_arch: str | None, what: str) -> str | None:
    need, have = sm_number(min_arch), sm_number(host_arch)
    if need is not None and (have is None or have < need):
        return f"{what} needs {min_arch}+, host is {normalize_arch(host_arch)}"
    return None


def evaluate_serve_config(meta: ServeConfigMetadata, host: HostFacts) -> Verdict:
    """Does this serve config (with its checkpoint) fit ``host``?"""
    v = Verdict()
    host_arch = normalize_arch(host.gpu_arch)
    if meta.gpu_arch is None or arch_family(meta.gpu_arch) != arch_family(host_arch):
        v.failures.append(f"arch family: the config was written for {meta.gpu_arch}, host is {host_arch}")
    fmt = f"the checkpoint's {meta.quant_format}/kv:{meta.kv_cache_quant}"
    failure = _min_arch_failure(meta.min_gpu_arch, host_arch, fmt)
    if failure:
        v.failures.append(failure)
    if not host.trtllm_version:  # the one rule (registry.compat): an unknown runtime is no match
        v.failures.append(runtime_verdict(meta.trtllm_version, host.trtllm_version, "host runtime").reason)
    elif host.trtllm_version != meta.trtllm_version:
        v.failures.append(
            f"TensorRT-LLM {host.trtllm_version} on the host, the config was validated for "
            f"{meta.trtllm_version}"
        )
    tp, pp = meta.tp or 1, meta.pp or 1
    if host.gpu_count is None:
        v.notes.append("host GPU count unknown: not checked")
    elif host.gpu_count < tp * pp:
        v.failures.append(f"needs {tp * pp} GPUs (tensor {tp} x pipeline {pp}), host has {host.gpu_count}")
    if host.gpu_mem_gib is None:
        v.notes.append("host GPU memory unknown: not checked")
        return v
    margin = max(MARGIN_MIN_GIB, MARGIN_FRACTION * host.gpu_mem_gib)
    weights = (meta.weights_bytes or 0) / (tp * pp) / GIB
    if meta.kv_bytes_per_token is None or meta.kv_tokens is None:
        kv = 0.0
        v.notes.append("KV-cache size unknown (model dims not recorded): weights checked only")
    else:
        kv = meta.kv_bytes_per_token * meta.kv_tokens / (tp * pp) / GIB
    if weights + kv + margin > host.gpu_mem_gib:
        v.failures.append(
            f"needs {weights:.1f} GiB weights + {kv:.1f} GiB KV ({meta.kv_tokens} tokens, "
            f"{meta.kv_tokens_from}) + {margin:.1f} GiB margin per GPU > {host.gpu_mem_gib:.1f} GiB"
        )
    return v


def evaluate_checkpoint(meta: HfCheckpointMetadata, host: HostFacts) -> Verdict:
    """A checkpoint alone: its format's arch requirement, and its weights spread over the host's GPUs."""
    v = Verdict()
    failure = _min_arch_failure(
        meta.min_gpu_arch, host.gpu_arch, f"{meta.quant_format}/kv:{meta.kv_cache_quant}"
    )
    if failure:
        v.failures.append(failure)
    if host.gpu_mem_gib is not None and host.gpu_count:
        per_gpu = (meta.weights_bytes or 0) / host.gpu_count / GIB
        if per_gpu > host.gpu_mem_gib:
            v.failures.append(
                f"weights need {per_gpu:.1f} GiB per GPU over {host.gpu_count} GPUs > "
                f"{host.gpu_mem_gib:.1f} GiB"
            )
    return v


def autotuner_key(
    gpu_name: str,
    gpu_arch: str,
    trtllm_version: str,
    tp: int,
    model: str,
    quant_format: str,
    kv_cache_quant: str,
) -> str:
    """The storage key (``build_key``) of an AutoTuner cache."""
    return digest_of(
        {
            "gpu_name": gpu_name.strip(),
            "gpu_arch": normalize_arch(gpu_arch),
            "trtllm_version": trtllm_version,
            "tp": tp,
            "model": model,
            "quantization": [quant_format, kv_cache_quant],
        }
    )


def autotuner_mismatch(
    meta: AutotunerCacheMetadata,
    gpu_name: str | None,
    gpu_arch: str | None,
    trtllm_version: str | None,
    tp: int,
    model: str,
) -> list[str]:
    """Why a cache does not fit a host (empty: it fits). An unknown host fact is a mismatch."""
    reasons = []
    wants = (
        ("GPU", meta.gpu_name, gpu_name),
        ("SM arch", normalize_arch(meta.gpu_arch), normalize_arch(gpu_arch)),
        ("TensorRT-LLM", meta.trtllm_version, trtllm_version),
        ("tp", meta.tp, tp),
        ("checkpoint", meta.model, model),
    )
    for what, have, host in wants:
        if host is None:
            reasons.append(f"{what} of the host unknown (cache is for {have})")
        elif have != host:
            reasons.append(f"{what} {have} != host {host}")
    return reasons

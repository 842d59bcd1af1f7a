"""Typed metadata of the PyTorch-backend artifact kinds, and how resolve judges them for a host.

Three kinds (manifest ``kind``), one class each; writers build the class and store ``to_metadata()``,
readers get it back with ``from_metadata()``. Keys named like catalog columns (``quant_format``, ``tp``,
``gpu_arch``, ``trtllm_version``, ...) fill those columns, so ``ls``/``show`` list them like engines.

- ``hf-checkpoint``: a unified Hugging Face checkpoint (ModelOpt export, ``hf_quant_config.json``) or the
  unquantized model. Not tied to TP/PP or a GPU beyond what its format needs (FP8: sm89 or newer).
- ``serve-config``: the LLM-API YAML for ``trtllm-serve --config``, checked against the TorchLlmArgs of one
  TensorRT-LLM version, pointing at its checkpoint by hash. This is what ``resolve`` picks for a host.
- ``autotuner-cache``: files TensorRT-LLM's AutoTuner wrote under ``TLLM_AUTOTUNER_CACHE_PATH`` on a GPU
  host, keyed by (GPU name, SM, TensorRT-LLM version, tp, model, quantization). Upstream loads a cache
  without checking where it came from, so the registry hands one only to a host matching every part.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from registry.canonical import digest_of
from registry.errors import InvalidInput
from registry.resolve import GIB, MARGIN_FRACTION, MARGIN_MIN_GIB, HostFacts, Verdict, normalize_arch

HF_CHECKPOINT = "hf-checkpoint"
SERVE_CONFIG = "serve-config"
AUTOTUNER_CACHE = "autotuner-cache"
KINDS = (HF_CHECKPOINT, SERVE_CONFIG, AUTOTUNER_CACHE)
FP8_MIN_ARCH = "sm89"
KV_BYTES = {"fp8": 1, "none": 2}  # bytes per KV element: FP8 cache, else the model's 16-bit dtype


class _Meta:
    """to/from the manifest's metadata dict; unknown keys are an error, missing optional ones default."""

    kind: ClassVar[str]

    def to_metadata(self) -> dict[str, Any]:
        return {"kind_schema": f"{self.kind}/1", **asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_metadata(cls, data: dict[str, Any]) -> Any:
        schema = data.get("kind_schema")
        if schema != f"{cls.kind}/1":
            raise InvalidInput(f"metadata is not a {cls.kind}/1 record (kind_schema={schema!r})")
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        extra = set(data) - names - {"kind_schema"}
        if extra:
            raise InvalidInput(f"{cls.kind} metadata has unknown keys {sorted(extra)}")
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class HfCheckpointMeta(_Meta):
    kind: ClassVar[str] = HF_CHECKPOINT

    build_key: str
    recipe_name: str
    model_source: str
    model_revision: str | None
    dtype: str
    quant_format: str  # none | fp8 | int4_awq
    kv_cache_quant: str  # none | fp8
    quant_algo: str | None  # hf_quant_config.json "quant_algo"
    kv_cache_quant_algo: str | None
    min_gpu_arch: str | None  # sm89 for FP8 weights or an FP8 KV cache; None: no requirement recorded
    architecture: str | None
    num_hidden_layers: int | None
    num_key_value_heads: int | None
    head_dim: int | None
    max_position_embeddings: int | None
    weights_bytes: int
    toolchain: str | None
    toolchain_image: str | None
    trtllm_version: str | None
    modelopt_version: str | None

    def kv_bytes_per_token(self, kv_cache_quant: str | None = None) -> int | None:
        """K and V of every layer for one token, across all ranks (None when the dims are not recorded)."""
        layers, kv_heads, head_dim = self.num_hidden_layers, self.num_key_value_heads, self.head_dim
        if layers is None or kv_heads is None or head_dim is None:
            return None
        return 2 * layers * kv_heads * head_dim * KV_BYTES[kv_cache_quant or self.kv_cache_quant]


@dataclass(frozen=True)
class ServeConfigMeta(_Meta):
    kind: ClassVar[str] = SERVE_CONFIG

    build_key: str
    recipe_name: str
    checkpoint: str  # artifact hash of the hf-checkpoint it serves
    checkpoint_build_key: str
    trtllm_version: str  # the release whose TorchLlmArgs the config was checked against
    llm_api_spec: str | None
    llm_api_commit: str | None
    gpu_arch: str  # the target the config was written for (its arch family must match the host's)
    min_gpu_arch: str | None
    tp: int
    pp: int
    max_batch_size: int | None
    max_seq_len: int | None
    max_num_tokens: int | None
    quant_format: str
    kv_cache_quant: str
    model_source: str
    model_revision: str | None
    toolchain_image: str | None
    weights_bytes: int  # the checkpoint's size
    kv_bytes_per_token: int | None
    kv_tokens: int | None  # tokens the memory check reserves KV for
    kv_tokens_from: str  # where kv_tokens comes from (kv_cache_config.max_tokens, max_seq_len, ...)

    def memory_per_gpu_gib(self) -> tuple[float, float] | None:
        """(weights, KV) GiB per GPU, split evenly over tp × pp; None when the KV size is unknown."""
        ranks = max(self.tp * self.pp, 1)
        if self.kv_bytes_per_token is None or self.kv_tokens is None:
            return None
        return self.weights_bytes / ranks / GIB, self.kv_bytes_per_token * self.kv_tokens / ranks / GIB


@dataclass(frozen=True)
class AutotunerCacheMeta(_Meta):
    kind: ClassVar[str] = AUTOTUNER_CACHE

    gpu_name: str
    gpu_arch: str
    trtllm_version: str
    tp: int
    model: str  # the hf-checkpoint hash the cache was tuned with
    quant_format: str
    kv_cache_quant: str
    cache_file: str  # the path TLLM_AUTOTUNER_CACHE_PATH named, relative to the artifact

    @property
    def key(self) -> str:
        """The storage key: a cache is reused only by a host where all of these are equal."""
        return autotuner_key(
            self.gpu_name,
            self.gpu_arch,
            self.trtllm_version,
            self.tp,
            self.model,
            self.quant_format,
            self.kv_cache_quant,
        )


def autotuner_key(
    gpu_name: str,
    gpu_arch: str,
    trtllm_version: str,
    tp: int,
    model: str,
    quant_format: str,
    kv_cache_quant: str,
) -> str:
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
    meta: AutotunerCacheMeta,
    gpu_name: str | None,
    gpu_arch: str | None,
    trtllm_version: str | None,
    tp: int,
    model: str,
) -> list[str]:
    """Why a cache does not fit a host (empty: it fits). An unknown host fact is a mismatch: a stale cache
    is applied silently upstream, so nothing is handed out on a guess."""
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


def _arch_family(arch: str | None) -> str | None:
    """sm90 -> "9" (Hopper), sm89 -> "8" ... the SM major."""
    norm = normalize_arch(arch)
    return norm[2:-1] if norm and norm.startswith("sm") and len(norm) >= 4 else None


def _arch_number(arch: str | None) -> int | None:
    norm = normalize_arch(arch)
    digits = norm[2:] if norm and norm.startswith("sm") else ""
    return int(digits) if digits.isdigit() else None


def evaluate_serve_config(meta: ServeConfigMeta, host: HostFacts) -> Verdict:
    """Does this serve config (with its checkpoint) fit the host? Every failed constraint says why."""
    v = Verdict()
    host_arch = normalize_arch(host.gpu_arch)
    if _arch_family(meta.gpu_arch) != _arch_family(host_arch):
        v.failures.append(f"arch family: the config was written for {meta.gpu_arch}, host is {host_arch}")
    need, have = _arch_number(meta.min_gpu_arch), _arch_number(host_arch)
    if need is not None and (have is None or have < need):
        v.failures.append(
            f"the checkpoint's {meta.quant_format}/kv:{meta.kv_cache_quant} needs {meta.min_gpu_arch}+, "
            f"host is {host_arch}"
        )
    if host.trtllm_version is None:
        v.notes.append("TensorRT-LLM runtime version of the host unknown: not checked")
    elif host.trtllm_version != meta.trtllm_version:
        v.failures.append(
            f"TensorRT-LLM {host.trtllm_version} on the host, the config was validated for "
            f"{meta.trtllm_version}"
        )
    ranks = meta.tp * meta.pp
    if host.gpu_count is None:
        v.notes.append("host GPU count unknown: not checked")
    elif host.gpu_count < ranks:
        v.failures.append(
            f"needs {ranks} GPUs (tensor {meta.tp} x pipeline {meta.pp}), host has {host.gpu_count}"
        )
    if host.gpu_mem_gib is None:
        v.notes.append("host GPU memory unknown: not checked")
    else:
        margin = max(MARGIN_MIN_GIB, MARGIN_FRACTION * host.gpu_mem_gib)
        split = meta.memory_per_gpu_gib()
        if split is None:
            weights, kv = meta.weights_bytes / max(ranks, 1) / GIB, 0.0
            v.notes.append("KV-cache size unknown (model dims not recorded): weights checked only")
        else:
            weights, kv = split
        if weights + kv + margin > host.gpu_mem_gib:
            v.failures.append(
                f"needs {weights:.1f} GiB weights + {kv:.1f} GiB KV ({meta.kv_tokens} tokens, "
                f"{meta.kv_tokens_from}) "
                f"+ {margin:.1f} GiB margin per GPU > {host.gpu_mem_gib:.1f} GiB"
            )
    return v


def evaluate_checkpoint(meta: HfCheckpointMeta, host: HostFacts) -> Verdict:
    """A checkpoint alone: only its format's arch requirement and the host's memory for its weights."""
    v = Verdict()
    need, have = _arch_number(meta.min_gpu_arch), _arch_number(host.gpu_arch)
    if need is not None and (have is None or have < need):
        v.failures.append(
            f"{meta.quant_format}/kv:{meta.kv_cache_quant} needs {meta.min_gpu_arch}+, host is "
            f"{normalize_arch(host.gpu_arch)}"
        )
    if host.gpu_mem_gib is not None and host.gpu_count:
        per_gpu = meta.weights_bytes / host.gpu_count / GIB
        if per_gpu > host.gpu_mem_gib:
            v.failures.append(
                f"weights need {per_gpu:.1f} GiB per GPU over {host.gpu_count} GPUs > "
                f"{host.gpu_mem_gib:.1f} GiB"
            )
    return v

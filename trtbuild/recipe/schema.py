"""The recipe schema: typed TOML tables, strict types, no unknown keys.

Cross-field rules (parallelism vs heads, FP8 vs arch, flags vs the toolchain's real CLI) live in
``trtbuild.recipe.checks``; loading and error reporting in ``trtbuild.recipe.load``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The recipe name is the artifact name: registry.refs' grammar, lowercase, at most 128 characters.
NAME_RE = re.compile(r"^(?=.{1,128}\Z)[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
REVISION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}\Z")  # a git commit, branch or tag name
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

QuantFormat = Literal["none", "fp8", "int8_sq", "int4_awq"]
KvCacheQuant = Literal["none", "fp8", "int8"]
Dtype = Literal["auto", "float16", "bfloat16", "float32"]
PluginDtype = Literal["auto", "float16", "float32", "bfloat16", "disable"]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Model(_Table):
    source: str = Field(description="hf://org/repo, file:///abs/path or s3://bucket/prefix")
    revision: str | None = Field(default=None, description="commit sha (hf), or a branch/tag to lock")
    architecture: str | None = Field(
        default=None, description="e.g. LlamaForCausalLM; default from config.json"
    )
    dtype: Dtype = "auto"

    @field_validator("source")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if len(v) > 4096 or _CONTROL.search(v):
            raise ValueError("must be at most 4096 characters without control characters")
        if v.startswith("hf://"):
            repo = v[len("hf://") :]
            if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo):
                raise ValueError("must be hf://ORG/REPO")
        elif v.startswith("file://"):
            if not v[len("file://") :].startswith("/"):
                raise ValueError("must be an absolute path: file:///abs/path")
        elif v.startswith("s3://"):
            if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?", v):
                raise ValueError("must be s3://BUCKET/PREFIX")
        else:
            raise ValueError("must start with hf://, file:// or s3://")
        return v

    @field_validator("revision")
    @classmethod
    def _revision(cls, v: str | None) -> str | None:
        if v is not None and not REVISION_RE.match(v):
            raise ValueError(
                "must be a commit sha, branch or tag: 1-255 letters, digits, '.', '_', '-', '/', no spaces"
            )
        return v

    @property
    def scheme(self) -> str:
        return self.source.split("://", 1)[0]

    @property
    def location(self) -> str:
        """The part after the scheme: ``org/repo``, ``/abs/path`` or ``bucket/prefix``."""
        return self.source.split("://", 1)[1]


class Calibration(_Table):
    samples: int = Field(default=512, ge=1, le=65536)
    max_seq_len: int = Field(default=512, ge=16, le=131072)
    batch_size: int = Field(default=1, ge=1, le=1024)
    dataset: str = Field(
        default="builtin", description="'builtin' or a local .jsonl/.txt file (relative to the recipe)"
    )


class AccuracyGate(_Table):
    min_top1_agreement: float | None = Field(default=None, ge=0.0, le=1.0)
    max_kl_divergence: float | None = Field(default=None, ge=0.0)


class Quantization(_Table):
    format: QuantFormat = "none"
    kv_cache: KvCacheQuant = "none"
    awq_block_size: Literal[64, 128] = 128
    device: Literal["cuda", "cpu"] = "cuda"  # where calibration runs; "cpu" for small models without a GPU
    # CUDA placement (trtbuild/quantize/placement.py): the step's tp x pp GPUs share the model; these cap
    # each GPU's weights (GiB) and allow layers that do not fit them into host memory (slow)
    max_gpu_memory_gib: float | None = Field(default=None, gt=0)
    cpu_offload: bool = False
    calibration: Calibration = Calibration()
    accuracy: AccuracyGate = AccuracyGate()

    @property
    def needs_quantize_step(self) -> bool:
        return self.format != "none" or self.kv_cache != "none"

    @property
    def qformat(self) -> str:
        """The format as quantize.py's ``--qformat`` names it (KV-cache-only quantization: ``full_prec``)."""
        return "full_prec" if self.format == "none" else self.format

    @property
    def uses_fp8(self) -> bool:
        return self.format == "fp8" or self.kv_cache == "fp8"


class Parallelism(_Table):
    tp: int = Field(default=1, ge=1)
    pp: int = Field(default=1, ge=1)

    @property
    def world_size(self) -> int:
        return self.tp * self.pp


class Limits(_Table):
    max_batch_size: int = Field(default=256, ge=1)
    max_input_len: int = Field(default=1024, ge=1)
    max_seq_len: int | None = Field(default=None, ge=1)
    max_num_tokens: int = Field(default=8192, ge=1)
    max_beam_width: int = Field(default=1, ge=1, le=1024)


# [build] switch -> trtllm-build flag. Booleans map to enable/disable; None leaves the tool's default.
BUILD_SWITCH_FLAGS: dict[str, str] = {
    "gemm_plugin": "--gemm_plugin",
    "gpt_attention_plugin": "--gpt_attention_plugin",
    "low_latency_gemm_plugin": "--low_latency_gemm_plugin",
    "gemm_swiglu_plugin": "--gemm_swiglu_plugin",
    "context_fmha": "--context_fmha",
    "use_paged_context_fmha": "--use_paged_context_fmha",
    "use_fp8_context_fmha": "--use_fp8_context_fmha",
    "multiple_profiles": "--multiple_profiles",
    "remove_input_padding": "--remove_input_padding",
    "use_fused_mlp": "--use_fused_mlp",
    "reduce_fusion": "--reduce_fusion",
    "user_buffer": "--user_buffer",
    "norm_quant_fusion": "--norm_quant_fusion",
    "kv_cache_type": "--kv_cache_type",
    "tokens_per_block": "--tokens_per_block",
    "strip_plan": "--strip_plan",
    "weight_streaming": "--weight_streaming",
    "logits_dtype": "--logits_dtype",
    "gather_context_logits": "--gather_context_logits",
    "opt_num_tokens": "--opt_num_tokens",
}
# Switches that are argparse store_true flags (present or absent) rather than enable/disable.
STORE_TRUE_SWITCHES = frozenset({"strip_plan", "weight_streaming", "gather_context_logits"})


def build_switch_flags(build: Build) -> list[str]:
    """The [build] switches as trtllm-build flags (explicit values only), without extra_args."""
    flags: list[str] = []
    for name, flag in BUILD_SWITCH_FLAGS.items():
        value = getattr(build, name)
        if value is None or (name in STORE_TRUE_SWITCHES and value is False):
            continue
        if name in STORE_TRUE_SWITCHES:
            flags.append(flag)
        elif isinstance(value, bool):
            flags += [flag, "enable" if value else "disable"]
        else:
            flags += [flag, str(value)]
    return flags


class Build(_Table):
    gemm_plugin: Literal["auto", "float16", "float32", "bfloat16", "fp8", "disable"] | None = "auto"
    gpt_attention_plugin: PluginDtype | None = "auto"
    low_latency_gemm_plugin: Literal["fp8", "disable"] | None = None
    gemm_swiglu_plugin: Literal["fp8", "disable"] | None = None
    context_fmha: bool | None = None
    use_paged_context_fmha: bool | None = None
    use_fp8_context_fmha: bool | None = None
    multiple_profiles: bool | None = None
    remove_input_padding: bool | None = None
    use_fused_mlp: bool | None = None
    reduce_fusion: bool | None = None
    user_buffer: bool | None = None
    norm_quant_fusion: bool | None = None
    kv_cache_type: Literal["paged", "continuous", "disabled"] = "paged"
    tokens_per_block: int | None = Field(default=None, ge=1, le=1024)
    opt_num_tokens: int | None = Field(default=None, ge=1)
    strip_plan: bool = False
    weight_streaming: bool = False
    logits_dtype: Literal["float16", "float32"] | None = None
    gather_context_logits: bool = False
    extra_args: list[str] = Field(default_factory=list)

    @field_validator("tokens_per_block")
    @classmethod
    def _pow2(cls, v: int | None) -> int | None:
        if v is not None and v & (v - 1):
            raise ValueError("must be a power of two")
        return v


Backend = Literal["engine", "pytorch"]


class Target(_Table):
    gpu_arch: str = "sm90"
    toolchain: str
    # None: the toolchain's default (engine where it has trtllm-build, else pytorch); see pytorch_checks
    backend: Backend | None = None

    @field_validator("gpu_arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        if not re.fullmatch(r"sm\d{2,3}", v):
            raise ValueError("must look like sm90 (H100/H200), sm89, sm80")
        return v


class Recipe(_Table):
    name: str
    model: Model
    quantization: Quantization = Quantization()
    parallelism: Parallelism = Parallelism()
    limits: Limits = Limits()
    build: Build = Build()
    target: Target
    # backend = "pytorch": LLM-API options for `trtllm-serve --config` (checked against the pinned release's
    # recorded TorchLlmArgs in trtbuild.recipe.pytorch_checks); refused for engine recipes
    serve: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                "must be lowercase letters and digits joined by single '.', '_', '__' or '-' (at most 128), "
                "starting and ending alphanumeric"
            )
        from registry.api import name_problem  # the registry's one grammar of names

        if name_problem(v) is not None:
            raise ValueError("must not be 7-64 hex digits: that reads as an artifact hash")
        return v

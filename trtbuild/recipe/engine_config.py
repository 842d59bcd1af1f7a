"""What trtllm-build does with a recipe: the switches its parser holds and what its builder saves.

trtllm-build does not save the limits and plugin switches it is given: before building it deduces and clips
the limits and overrides switches that do not apply to the checkpoint. This module mirrors that normalisation
as read in TensorRT-LLM (the TensorRT-LLM sources cited below):

- limits: ``builder._init_max_seq_len`` and ``_common.check_max_num_tokens`` (builder.py @008b2b8d, the same
  code in the later builder.py read for conformance.md), plus the speculative-decoding adjustments of
  ``builder.build``;
- switches: ``builder.build`` (reduce_fusion, user_buffer, norm_quant_fusion, the context-FMHA block, paged
  context FMHA with an INT8 KV cache) and ``commands/build.py main()`` (use_fused_mlp for quantized
  checkpoints other than FP8 / MIXED_PRECISION).

``validate`` refuses explicit switches the builder would override, ``plan`` shows the limits the engine will
have, and ``verify`` compares an engine's config.json with these values instead of the requested ones.
Stdlib only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from trtbuild.recipe import cli_spec

# builder.build: FP8 context FMHA is used only for these checkpoint quant_algo values.
FP8_FMHA_QUANT_ALGOS = frozenset({"FP8", "W4A8_AWQ", "NVFP4"})
# builder.build: reduce_fusion is kept only for these architectures (and tp > 1).
REDUCE_FUSION_ARCHS = frozenset({"LlamaForCausalLM", "Gemma2ForCausalLM", "MedusaForCausalLM"})
# commands/build.py main(): use_fused_mlp is dropped for any other quantized checkpoint.
FUSED_MLP_QUANT_ALGOS = frozenset({"FP8", "MIXED_PRECISION"})
# builder._init_max_seq_len: the rope factor is ignored for these scaling types.
ROPE_FACTOR_IGNORED = frozenset({"su", "longrope", "llama3"})
DEFAULT_MAX_POSITIONS = 2048  # _init_max_seq_len's fallback when the checkpoint has none
FP8_FMHA_MIN_SM = 89
# The checkpoint quant_algo / kv_cache_quant_algo a recipe's format produces (what the builder looks at).
QUANT_ALGO_OF_FORMAT = {"none": None, "fp8": "FP8", "int8_sq": "W8A8_SQ_PER_CHANNEL", "int4_awq": "W4A16_AWQ"}
KV_ALGO_OF_CACHE = {"none": None, "fp8": "FP8", "int8": "INT8"}
# Speculative-decoding modes whose max_seq_len increase depends on checkpoint fields trtbuild does not plan.
UNPREDICTED_SPEC_MODES = frozenset({"eagle"})


@dataclass(frozen=True)
class Switches:
    """Plugin switches as trtllm-build holds them after parsing (explicit value, else the parser default)."""

    context_fmha: bool
    remove_input_padding: bool
    tokens_per_block: int
    use_paged_context_fmha: bool
    use_fp8_context_fmha: bool
    multiple_profiles: bool
    reduce_fusion: bool
    user_buffer: bool
    norm_quant_fusion: bool
    use_fused_mlp: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Switches:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


# Switches whose saved value lands in build_config.plugin_config (use_fused_mlp is handed to the model
# optimiser instead, so an engine's config.json need not show main()'s override of it).
SAVED_IN_PLUGIN_CONFIG = tuple(f.name for f in fields(Switches) if f.name != "use_fused_mlp")


def parser_switches(explicit: dict[str, Any], family: str) -> Switches:
    """``explicit`` recipe values (None = unset) over the defaults of the family's recorded parser."""
    known = cli_spec.flags("trtllm-build", family)
    values: dict[str, Any] = {}
    for f in fields(Switches):
        value = explicit.get(f.name)
        if value is None:
            default = known[f"--{f.name}"].default
            value = int(str(default)) if f.name == "tokens_per_block" else bool(default)
        values[f.name] = value
    return Switches(**values)


@dataclass(frozen=True)
class Checkpoint:
    """What trtllm-build reads from the checkpoint's config.json that changes what it saves."""

    architecture: str | None
    quant_algo: str | None
    kv_cache_quant_algo: str | None
    tp: int
    max_position_embeddings: int | None
    rotary_scaling: dict[str, Any] | None

    @classmethod
    def from_pretrained_config(cls, cfg: dict[str, Any]) -> Checkpoint:
        """From a TensorRT-LLM checkpoint (or an engine's ``pretrained_config``)."""
        quant = cfg.get("quantization") or {}
        mapping = cfg.get("mapping") or {}
        scaling = cfg.get("rotary_scaling")
        mpe = cfg.get("max_position_embeddings")
        return cls(
            architecture=cfg.get("architecture"),
            quant_algo=quant.get("quant_algo"),
            kv_cache_quant_algo=quant.get("kv_cache_quant_algo"),
            tp=int(mapping.get("tp_size", 1)),
            max_position_embeddings=mpe if isinstance(mpe, int) else None,
            rotary_scaling=scaling if isinstance(scaling, dict) else None,
        )


@dataclass(frozen=True)
class Override:
    """A switch or limit the builder saves with another value than it was given, and why."""

    field: str
    requested: object
    saved: object
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def builder_switches(sw: Switches, ckpt: Checkpoint, sm: int) -> tuple[Switches, list[Override]]:
    """The switches ``builder.build`` saves for ``ckpt`` on an SM ``sm`` GPU, with every override it makes.

    An unknown architecture (None) leaves the architecture-dependent switches as given.
    """
    out: list[Override] = []
    cur = sw

    def force(name: str, value: bool, reason: str) -> None:
        nonlocal cur
        if getattr(cur, name) != value:
            out.append(Override(name, getattr(sw, name), value, reason))
            cur = replace(cur, **{name: value})

    arch, quant = ckpt.architecture, ckpt.quant_algo
    fp8_kv, int8_kv = ckpt.kv_cache_quant_algo == "FP8", ckpt.kv_cache_quant_algo == "INT8"
    if cur.reduce_fusion and ckpt.tp == 1:
        force("reduce_fusion", False, "reduce fusion fuses the all-reduce of tensor parallelism; tp is 1")
    elif cur.reduce_fusion and arch is not None and arch not in REDUCE_FUSION_ARCHS:
        force(
            "reduce_fusion", False, f"reduce fusion exists only for {', '.join(sorted(REDUCE_FUSION_ARCHS))}"
        )
    if cur.user_buffer and not cur.reduce_fusion:
        force("user_buffer", False, "user buffers work only together with reduce fusion")
    if cur.norm_quant_fusion and (
        cur.reduce_fusion or quant != "NVFP4" or (arch and arch != "LlamaForCausalLM")
    ):
        force(
            "norm_quant_fusion", False, "norm-quant fusion exists only for NVFP4 Llama without reduce fusion"
        )
    if not cur.context_fmha:
        force("use_fp8_context_fmha", False, "context FMHA is off")
        force("use_paged_context_fmha", False, "context FMHA is off")
    elif quant not in FP8_FMHA_QUANT_ALGOS:
        force(
            "use_fp8_context_fmha",
            False,
            "FP8 context FMHA needs FP8 weights (quant_algo FP8, W4A8_AWQ or NVFP4); an FP8 KV cache alone "
            "does not enable it",
        )
        if cur.use_paged_context_fmha and fp8_kv:
            force(
                "use_paged_context_fmha",
                False,
                "paged context FMHA with an FP8 KV cache needs FP8 context FMHA",
            )
    elif sm < FP8_FMHA_MIN_SM:
        force("use_fp8_context_fmha", False, f"FP8 context FMHA needs sm{FP8_FMHA_MIN_SM} or newer")
        if cur.use_paged_context_fmha and fp8_kv:
            force(
                "use_paged_context_fmha",
                False,
                "paged context FMHA with an FP8 KV cache needs FP8 context FMHA",
            )
    elif cur.use_paged_context_fmha:
        if not fp8_kv and cur.use_fp8_context_fmha:
            force(
                "use_fp8_context_fmha",
                False,
                "FP8 context FMHA with paged context FMHA needs an FP8 KV cache",
            )
        elif fp8_kv and not cur.use_fp8_context_fmha:
            force(
                "use_fp8_context_fmha",
                True,
                "paged context FMHA with an FP8 KV cache turns FP8 context FMHA on",
            )
    if cur.use_paged_context_fmha and int8_kv:
        force("use_paged_context_fmha", False, "paged context FMHA does not work with an INT8 KV cache")
    if cur.use_fused_mlp and quant and quant not in FUSED_MLP_QUANT_ALGOS:
        force("use_fused_mlp", False, f"the fused gated MLP is not built for {quant} checkpoints")
    return cur, out


@dataclass(frozen=True)
class EngineLimits:
    """The limits an engine's build_config will carry (None: deduced from a checkpoint not at hand)."""

    max_batch_size: int
    max_input_len: int
    max_seq_len: int | None
    max_num_tokens: int | None
    opt_num_tokens: int | None
    max_beam_width: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def deduce_max_seq_len(max_position_embeddings: int | None, rotary_scaling: dict[str, Any] | None) -> int:
    """builder._init_max_seq_len when --max_seq_len is unset: positions (default 2048) × the rope factor."""
    deduced = max_position_embeddings if max_position_embeddings is not None else DEFAULT_MAX_POSITIONS
    factor = 1.0
    if rotary_scaling:
        kind = rotary_scaling.get("type", rotary_scaling.get("rope_type"))
        factor = 1.0 if kind in ROPE_FACTOR_IGNORED else float(rotary_scaling.get("factor", 1.0))
    if factor != 1:
        deduced = math.ceil(deduced * factor)
    return int(deduced)


def speculative_of(extra_args: list[str]) -> tuple[str | None, int]:
    """(speculative_decoding_mode, max_draft_len) given through extra_args."""
    given = cli_spec.parse_argv(list(extra_args))
    mode = given.get("--speculative_decoding_mode")
    try:
        draft = int(given.get("--max_draft_len") or 0)
    except ValueError:
        draft = 0
    return mode, draft


def engine_limits(
    requested: dict[str, Any],
    sw: Switches,
    *,
    opt_num_tokens: int | None,
    max_position_embeddings: int | None,
    rotary_scaling: dict[str, Any] | None,
    checkpoint_known: bool,
    speculative: tuple[str | None, int] = (None, 0),
) -> tuple[EngineLimits, list[Override]]:
    """The limits trtllm-build saves for ``requested`` (the recipe's [limits]), with every change it makes.

    ``checkpoint_known``: the checkpoint's positions and rope scaling are at hand (else an unset max_seq_len
    stays unknown, and so do the limits derived from it).
    """
    out: list[Override] = []
    mbs, beam = int(requested["max_batch_size"]), int(requested["max_beam_width"])
    max_input = int(requested["max_input_len"])
    max_seq = requested.get("max_seq_len")
    mnt: int | None = int(requested["max_num_tokens"])
    opt = opt_num_tokens
    if max_seq is None:
        if not checkpoint_known:
            return EngineLimits(mbs, max_input, None, None, opt, beam), out
        max_seq = deduce_max_seq_len(max_position_embeddings, rotary_scaling)
        out.append(
            Override("max_seq_len", None, max_seq, "deduced from max_position_embeddings × rope factor")
        )
    if max_input > max_seq:
        out.append(Override("max_input_len", max_input, max_seq, "clipped to max_seq_len"))
        max_input = max_seq
    mnt, opt = _check_max_num_tokens(mnt, opt, mbs, max_input, max_seq, beam, sw, out)
    mode, draft = speculative
    if mode and mode != "none":
        if mode in UNPREDICTED_SPEC_MODES:
            return EngineLimits(mbs, max_input, None, None, opt, beam), out
        out.append(
            Override(
                "max_seq_len", max_seq, max_seq + draft, "raised by max_draft_len (speculative decoding)"
            )
        )
        max_seq += draft
        if mnt is not None and mnt < mbs * (draft + 1):
            out.append(
                Override("max_num_tokens", mnt, mbs * (draft + 1), "raised to max_batch_size × (draft + 1)")
            )
            mnt = mbs * (draft + 1)
    return EngineLimits(mbs, max_input, max_seq, mnt, opt, beam), out


def _check_max_num_tokens(
    mnt: int | None,
    opt: int | None,
    mbs: int,
    max_input: int,
    max_seq: int,
    beam: int,
    sw: Switches,
    out: list[Override],
) -> tuple[int | None, int | None]:
    """_common.check_max_num_tokens, recording each change in ``out``."""

    def change(name: str, old: int | None, new: int | None, reason: str) -> None:
        if old != new:
            out.append(Override(name, old, new, reason))

    if not sw.remove_input_padding:
        if mnt is not None or opt is not None:
            change(
                "max_num_tokens",
                mnt,
                mbs * max_seq,
                "remove_input_padding is off: max_batch_size × max_seq_len",
            )
            mnt = mbs * max_seq
        return mnt, opt
    if mnt is None:
        mnt = mbs * max_seq
    if opt is None and not sw.multiple_profiles:
        opt = min(mbs * beam, mnt)
        out.append(
            Override("opt_num_tokens", None, opt, "min(max_batch_size × max_beam_width, max_num_tokens)")
        )
    if mnt > mbs * max_seq:
        change("max_num_tokens", mnt, mbs * max_seq, "capped at max_batch_size × max_seq_len")
        mnt = mbs * max_seq
    if mnt < max_input and not sw.context_fmha:
        change("max_num_tokens", mnt, max_input, "context FMHA is off: raised to max_input_len")
        mnt = max_input
    elif mnt < sw.tokens_per_block and sw.context_fmha:
        change("max_num_tokens", mnt, sw.tokens_per_block, "raised to tokens_per_block")
        mnt = sw.tokens_per_block
    if opt is not None and opt > mnt:
        change("opt_num_tokens", opt, mnt, "capped at max_num_tokens")
        opt = mnt
    return mnt, opt

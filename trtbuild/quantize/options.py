"""Options of the quantize driver, its argv (a subset of TensorRT-LLM's quantize.py flags) and its env.

Stdlib only: the builder imports this to write the step's command line, the driver parses it back.

Every flag that ``build_argv`` emits and ``parse_argv`` accepts is a flag of TensorRT-LLM's
``examples/quantization/quantize.py`` with the same name and value meaning (see
``trtbuild/data/cli_specs/*.json``, tool ``quantize``), with two narrowings:
``--calib_dataset`` is a local JSON/JSONL/text file or ``builtin`` (never a hub download), and
``--qformat``/``--kv_cache_dtype`` accept only the formats trtbuild supports.

Settings quantize.py has no flag for are fields of ``QuantizeOptions`` and travel as environment
variables (``build_env``), documented here:

  TRTBUILD_QUANT_ACCURACY_GATE  "1" (default) enforce the accuracy gate; "0" measure and report only
  TRTBUILD_QUANT_MIN_TOP1       minimum top-1 agreement with the unquantized model (default per format)
  TRTBUILD_QUANT_MAX_KL         maximum mean KL(unquantized || quantized) in nats (default per format)
  TRTBUILD_QUANT_GATE_PROMPTS   held-out prompts the gate compares (default 16)
  TRTBUILD_QUANT_GATE_TOKENS    tokens per held-out prompt (default 32)
  TRTBUILD_QUANT_MAX_GPU_MEMORY_GIB  GiB of each GPU the model's weights may take while calibrating
                                (accelerate's max_memory; default: the GPU's free memory less a reserve
                                for the CUDA context and the calibration batch; see placement.py)
  TRTBUILD_QUANT_CPU_OFFLOAD    "1": layers that do not fit the GPUs go to host memory (slow); "0"
                                (default): such a model is refused before loading, naming the fixes
  CUDA_VISIBLE_DEVICES          which GPUs: the driver calibrates on all it sees, one GPU whole, several
                                split evenly (the builder's quantize step gets tp x pp GPUs)
  TORCH_EXTENSIONS_DIR          where torch keeps compiled extensions; point it at a persistent cache so
                                ModelOpt's ``modelopt_cuda_ext`` (INT4 AWQ on CUDA) compiles only once
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import NoReturn

from trtbuild.settings import (
    QUANT_ACCURACY_GATE,
    QUANT_CPU_OFFLOAD,
    QUANT_GATE_PROMPTS,
    QUANT_GATE_TOKENS,
    QUANT_MAX_GPU_MEMORY_GIB,
    QUANT_MAX_KL,
    QUANT_MIN_TOP1,
)

BUILTIN_DATASET = "builtin"
QFORMATS = ("fp8", "int8_sq", "int4_awq", "full_prec")
KV_CACHE_DTYPES = ("fp8", "int8")
DTYPES = ("auto", "float16", "bfloat16", "float32")
DEVICES = ("cuda", "cpu")
# quantize.py@059c97c1's --export_format: a TensorRT-LLM checkpoint (the engine path) or a unified Hugging
# Face checkpoint with hf_quant_config.json (the PyTorch backend; TP/PP are chosen at deployment)
EXPORT_FORMATS = ("tensorrt_llm", "hf")
HF_QFORMATS = ("fp8", "int4_awq", "full_prec")

# Accuracy-gate defaults per format: (min top-1 agreement, max mean KL in nats). Measured on the tiny
# random Llama of tests/tiny_models.py (16 held-out prompts x 32 tokens, seeds 0 and 1, FP8 KV cache on):
# correct FP8 0.953-0.973 / 0.0005, INT8 SQ 0.967-0.977 / 0.0005, INT4 AWQ 0.896-0.918 / 0.005; weight
# scales corrupted 10x after calibration: top-1 0.557-0.594, KL 0.10-0.13 (every format). On the
# 1.1B random Llama of bench/quantize_gpu (H100, same init recipe): FP8+FP8 KV 0.945 / 0.0010, INT8 SQ
# 0.963 / 0.0004, INT4 AWQ 0.860 / 0.0066 (bench/quantize_gpu/RESULTS.md). The thresholds leave margin under
# the correct figures and catch the broken ones on top-1 alone; a quantized KV cache (fp8/int8) moves
# the figures by < 0.01, so it shares the format's thresholds.
GATE_DEFAULTS: dict[str, tuple[float, float]] = {
    "fp8": (0.85, 0.05),
    "int8_sq": (0.85, 0.05),
    "int4_awq": (0.75, 0.10),
    "full_prec": (0.90, 0.02),  # only a quantized KV cache is in play
}

# The names are defined (and documented) with every other setting in trtbuild.settings (stdlib only, so
# the driver imports it inside the toolchain container); the driver reads their values here.
ENV_GATE = QUANT_ACCURACY_GATE
ENV_MIN_TOP1 = QUANT_MIN_TOP1
ENV_MAX_KL = QUANT_MAX_KL
ENV_GATE_PROMPTS = QUANT_GATE_PROMPTS
ENV_GATE_TOKENS = QUANT_GATE_TOKENS
ENV_MAX_GPU_MEMORY = QUANT_MAX_GPU_MEMORY_GIB
ENV_CPU_OFFLOAD = QUANT_CPU_OFFLOAD
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


@dataclass
class QuantizeOptions:
    """Everything one quantize run needs. Field names follow quantize.py's flags where one exists."""

    model_dir: str
    output_dir: str
    qformat: str = "fp8"
    kv_cache_dtype: str | None = None
    tp_size: int = 1
    pp_size: int = 1
    calib_dataset: str = BUILTIN_DATASET
    calib_size: int = 512
    batch_size: int = 1
    calib_max_seq_length: int = 512
    awq_block_size: int = 128
    dtype: str = "auto"
    device: str = "cuda"
    seed: int = 1234
    tokenizer_max_seq_length: int = 2048
    export_format: str = "tensorrt_llm"
    # not quantize.py flags: environment variables in the container (see module docstring)
    accuracy_gate: bool = True
    min_top1: float | None = None
    max_kl: float | None = None
    gate_prompts: int = 16
    gate_tokens: int = 32
    max_gpu_memory_gib: float | None = None  # per-GPU weight budget (placement.py); None: free - reserve
    cpu_offload: bool = False  # layers that do not fit the GPUs may go to host memory

    def thresholds(self) -> tuple[float, float]:
        """(min top-1 agreement, max mean KL) in force: explicit values, else the format's defaults."""
        d_top1, d_kl = GATE_DEFAULTS[self.qformat]
        return (
            d_top1 if self.min_top1 is None else self.min_top1,
            d_kl if self.max_kl is None else self.max_kl,
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# (flag, field) pairs in the order build_argv writes them; every flag is in quantize.py's listing
ARGV_FLAGS: tuple[tuple[str, str], ...] = (
    ("--model_dir", "model_dir"),
    ("--output_dir", "output_dir"),
    ("--qformat", "qformat"),
    ("--kv_cache_dtype", "kv_cache_dtype"),
    ("--tp_size", "tp_size"),
    ("--pp_size", "pp_size"),
    ("--calib_dataset", "calib_dataset"),
    ("--calib_size", "calib_size"),
    ("--batch_size", "batch_size"),
    ("--calib_max_seq_length", "calib_max_seq_length"),
    ("--awq_block_size", "awq_block_size"),
    ("--dtype", "dtype"),
    ("--device", "device"),
    ("--seed", "seed"),
    ("--tokenizer_max_seq_length", "tokenizer_max_seq_length"),
    ("--export_format", "export_format"),
)
# flags the HF export leaves out: the checkpoint is not split by TP/PP
_NOT_FOR_HF = ("tp_size", "pp_size")


def build_argv(options: QuantizeOptions) -> list[str]:
    """The driver's argv for ``options`` (flags and values only; prefix ``python3 -m trtbuild.quantize``).

    ``--kv_cache_dtype`` is left out when no KV-cache quantization is wanted (quantize.py's default is
    none); ``--awq_block_size`` only for int4_awq; ``--export_format`` only for ``hf`` (the TensorRT-LLM
    checkpoint is quantize.py's default, and the engine toolchains' quantize.py listing has no such flag),
    which also leaves out ``--tp_size`` / ``--pp_size``.
    """
    argv: list[str] = []
    hf = options.export_format == "hf"
    for flag, name in ARGV_FLAGS:
        value = getattr(options, name)
        if value is None or (name == "awq_block_size" and options.qformat != "int4_awq"):
            continue
        if (name == "export_format" and not hf) or (hf and name in _NOT_FOR_HF):
            continue
        argv += [flag, str(value)]
    return argv


def build_env(options: QuantizeOptions, *, torch_extensions_dir: str | None = None) -> dict[str, str]:
    """Environment variables carrying the options quantize.py has no flag for."""
    env = {
        ENV_GATE: "1" if options.accuracy_gate else "0",
        ENV_GATE_PROMPTS: str(options.gate_prompts),
        ENV_GATE_TOKENS: str(options.gate_tokens),
    }
    if options.min_top1 is not None:
        env[ENV_MIN_TOP1] = repr(float(options.min_top1))
    if options.max_kl is not None:
        env[ENV_MAX_KL] = repr(float(options.max_kl))
    if options.max_gpu_memory_gib is not None:
        env[ENV_MAX_GPU_MEMORY] = repr(float(options.max_gpu_memory_gib))
    if options.cpu_offload:
        env[ENV_CPU_OFFLOAD] = "1"
    if torch_extensions_dir:
        env["TORCH_EXTENSIONS_DIR"] = torch_extensions_dir
    return env


class ArgvError(ValueError):
    """argv or env could not be parsed; the message names the flag or variable."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # never sys.exit from inside the API
        raise ArgvError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python3 -m trtbuild.quantize",
        description=(
            "Quantize a Hugging Face Llama checkpoint with NVIDIA ModelOpt and export a TensorRT-LLM "
            "checkpoint. Flags are a subset of TensorRT-LLM's examples/quantization/quantize.py."
        ),
    )
    p.add_argument("--model_dir", required=True)
    p.add_argument("--output_dir", default="exported_model")
    p.add_argument("--qformat", choices=QFORMATS, default="full_prec")
    p.add_argument("--kv_cache_dtype", choices=KV_CACHE_DTYPES, default=None)
    p.add_argument("--tp_size", type=int, default=1)
    p.add_argument("--pp_size", type=int, default=1)
    p.add_argument(
        "--calib_dataset",
        default=BUILTIN_DATASET,
        help=f"a local .jsonl/.json/.txt file, or {BUILTIN_DATASET!r} (trtbuild's built-in set)",
    )
    p.add_argument("--calib_size", type=int, default=512)
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--calib_max_seq_length", type=int, default=512)
    p.add_argument("--awq_block_size", type=int, default=128)
    p.add_argument("--dtype", choices=DTYPES, default="auto")
    p.add_argument("--device", choices=DEVICES, default="cuda")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--tokenizer_max_seq_length", type=int, default=2048)
    p.add_argument("--export_format", choices=EXPORT_FORMATS, default="tensorrt_llm")
    return p


def _env_float(env: Mapping[str, str], key: str) -> float | None:
    raw = env.get(key)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ArgvError(f"environment variable {key}={raw!r} is not a number") from None


def _env_bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip().lower()
    if raw == "":
        return default
    if raw not in _TRUE + _FALSE:
        raise ArgvError(f"environment variable {key}={raw!r}: use 1 or 0")
    return raw in _TRUE


def _env_int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ArgvError(f"environment variable {key}={raw!r} is not an integer") from None


def parse_argv(argv: list[str], env: Mapping[str, str] | None = None) -> QuantizeOptions:
    """Options from the driver's argv (quantize.py flag names) and environment; ``ArgvError`` if invalid."""
    env = os.environ if env is None else env
    ns = _parser().parse_args(argv)
    gate = _env_bool(env, ENV_GATE, True)
    offload = _env_bool(env, ENV_CPU_OFFLOAD, False)
    values = {f.name: getattr(ns, f.name) for f in fields(QuantizeOptions) if hasattr(ns, f.name)}
    return QuantizeOptions(
        **values,
        accuracy_gate=gate,
        max_gpu_memory_gib=_env_float(env, ENV_MAX_GPU_MEMORY),
        cpu_offload=offload,
        min_top1=_env_float(env, ENV_MIN_TOP1),
        max_kl=_env_float(env, ENV_MAX_KL),
        gate_prompts=_env_int(env, ENV_GATE_PROMPTS, 16),
        gate_tokens=_env_int(env, ENV_GATE_TOKENS, 32),
    )


def validate_options(options: QuantizeOptions) -> list[str]:
    """Problems with option values themselves (not the model); each names its flag."""
    problems = []
    if options.qformat not in QFORMATS:
        problems.append(f"--qformat {options.qformat!r}: use one of {', '.join(QFORMATS)}")
    if options.kv_cache_dtype not in (None, *KV_CACHE_DTYPES):
        problems.append(f"--kv_cache_dtype {options.kv_cache_dtype!r}: use fp8 or int8, or leave it out")
    if options.dtype not in DTYPES:
        problems.append(f"--dtype {options.dtype!r}: use one of {', '.join(DTYPES)}")
    if options.device not in DEVICES:
        problems.append(f"--device {options.device!r}: use cuda or cpu")
    if options.export_format not in EXPORT_FORMATS:
        problems.append(f"--export_format {options.export_format!r}: use tensorrt_llm or hf")
    elif options.export_format == "hf":
        if options.qformat not in HF_QFORMATS:
            problems.append(
                f"--qformat {options.qformat} with --export_format hf: the unified HF checkpoint "
                f"(PyTorch backend) takes {', '.join(HF_QFORMATS)}; INT8 SmoothQuant exists only as a "
                "TensorRT-LLM checkpoint"
            )
        if options.kv_cache_dtype not in (None, "fp8"):
            problems.append(
                "--kv_cache_dtype int8 with --export_format hf: the PyTorch backend has an FP8 KV cache only"
            )
        if (options.tp_size, options.pp_size) != (1, 1):
            problems.append(
                "--tp_size/--pp_size with --export_format hf: the HF checkpoint is not split; "
                "choose tensor/pipeline parallelism when serving it"
            )
    for name, flag in (
        ("tp_size", "--tp_size"),
        ("pp_size", "--pp_size"),
        ("calib_size", "--calib_size"),
        ("batch_size", "--batch_size"),
        ("calib_max_seq_length", "--calib_max_seq_length"),
        ("awq_block_size", "--awq_block_size"),
        ("tokenizer_max_seq_length", "--tokenizer_max_seq_length"),
    ):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{flag} {value!r}: must be a positive integer")
    if options.calib_max_seq_length < 2:
        problems.append("--calib_max_seq_length must be at least 2")
    if options.gate_prompts < 1 or options.gate_tokens < 2:
        problems.append(f"{ENV_GATE_PROMPTS} must be >= 1 and {ENV_GATE_TOKENS} >= 2")
    if options.min_top1 is not None and not 0.0 <= options.min_top1 <= 1.0:
        problems.append(f"minimum top-1 agreement {options.min_top1}: must be between 0 and 1")
    if options.max_kl is not None and options.max_kl < 0:
        problems.append(f"maximum KL divergence {options.max_kl}: must be >= 0")
    if options.max_gpu_memory_gib is not None and not options.max_gpu_memory_gib > 0:
        problems.append(f"{ENV_MAX_GPU_MEMORY}={options.max_gpu_memory_gib}: must be > 0 (GiB per GPU)")
    return problems

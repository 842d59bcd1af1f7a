"""The ``trtllm-serve`` command line of a baked image, built from the engine's fixed limits.

Flags are those of ``tensorrt_llm/commands/serve.py`` in NVIDIA/TensorRT-LLM
@4c05a74891e4df8066f08ed4ce14b0972abe4e25 (the 1.x line; also present, with aliases added, at
@00209af149e7774406881a37283dce303571eb11): MODEL, --tokenizer, --host, --port,
--backend {pytorch,tensorrt,_autodeploy} (default pytorch, so an engine directory needs
``--backend tensorrt``), --max_beam_width, --max_batch_size, --max_num_tokens, --max_seq_len, --tp_size,
--pp_size, --kv_cache_free_gpu_memory_fraction. ``trtllm-serve MODEL`` dispatches to ``serve`` (DefaultGroup).
The server answers GET /health (docs/source/commands/trtllm-serve.rst).
Before 1.0 (0.18.2 docs) --backend only accepted ``pytorch`` and the flags of 0.19-0.21 were not read,
so engines of those releases are refused here rather than served with guessed flags.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.api import at_least
from trtbuild.bake.engine import EngineInfo, check_runtime_limit
from trtbuild.bake.triton_repo import check_fraction
from trtbuild.errors import InputError

MIN_SERVE_VERSION = "1.0.0"
DEFAULT_PORT = 8000


@dataclass
class ServeOptions:
    max_batch_size: int | None = None
    max_beam_width: int | None = None
    kv_cache_free_gpu_memory_fraction: float = 0.9
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT


def serve_command(
    info: EngineInfo, opts: ServeOptions, *, engine_path: str, tokenizer_path: str
) -> list[str]:
    """argv of the server; every engine-fixed limit is passed explicitly (the CLI defaults are not
    the engine's)."""
    if not at_least(info.trtllm_version, MIN_SERVE_VERSION):
        raise InputError(
            f"engine built with TensorRT-LLM {info.trtllm_version}: "
            "the trtllm-serve template supports the 1.x line "
            "(its flags were verified for 1.0/1.1 only)",
            hint="bake with --template triton, or rebuild the engine with a 1.0 or 1.1 toolchain",
        )
    if not 0 < opts.port < 65536:
        raise InputError(f"--port must be 1-65535 (got {opts.port})", hint="e.g. --port 8000")
    batch = check_runtime_limit(info, "max_batch_size", opts.max_batch_size)
    beam = check_runtime_limit(info, "max_beam_width", opts.max_beam_width)
    fraction = check_fraction(opts.kv_cache_free_gpu_memory_fraction, "--kv-cache-free-gpu-mem-fraction")
    argv = [
        "trtllm-serve",
        engine_path,
        "--tokenizer",
        tokenizer_path,
        "--backend",
        "tensorrt",
        "--host",
        opts.host,
        "--port",
        str(opts.port),
        "--tp_size",
        str(info.tp),
        "--pp_size",
        str(info.pp),
        "--max_batch_size",
        str(batch),
        "--max_beam_width",
        str(beam),
    ]
    if info.max_num_tokens is not None:
        argv += ["--max_num_tokens", str(info.max_num_tokens)]
    if info.max_seq_len is not None:
        argv += ["--max_seq_len", str(info.max_seq_len)]
    argv += ["--kv_cache_free_gpu_memory_fraction", str(fraction)]
    return argv

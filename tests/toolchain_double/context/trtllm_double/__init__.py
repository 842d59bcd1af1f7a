"""TOOLCHAIN DOUBLE: a test stand-in for the TensorRT-LLM tools (trtllm-build, convert_checkpoint.py,
nvidia-smi). Not TensorRT-LLM: it parses exactly the real command lines (from cli_spec.json) and writes the
real directory layouts, with deterministic placeholder engine bytes. Standard library only."""

import os
from pathlib import Path

ROOT = Path(os.environ.get("TOOLCHAIN_DOUBLE_ROOT", "/opt/toolchain_double"))


def version() -> str:
    """The TensorRT-LLM version this double stands in for (fixed when the image is built)."""
    return (ROOT / "VERSION").read_text().strip()


def log(level: str, msg: str) -> None:
    """A log line in TensorRT-LLM's format ("[TRT-LLM] [I] ...")."""
    print(f"[TRT-LLM] [{level}] {msg}", flush=True)

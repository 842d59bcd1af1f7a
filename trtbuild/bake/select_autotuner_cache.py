"""Run a command with ``TLLM_AUTOTUNER_CACHE_PATH`` set to the warm-start cache captured on this GPU, if any.

Copied into serving images by ``trtbuild bake`` next to ``index.json`` ([{gpu_name, gpu_arch, dir,
cache_file}]); used as ``python3 select_autotuner_cache.py trtllm-serve ...``. The host's GPU name and SM come
from ``nvidia-smi --query-gpu=name,compute_cap``; a cache is used only when both equal what it was captured
on (TensorRT-LLM loads a cache without checking where it came from). No match, several different GPUs, or
no nvidia-smi: the variable is left unset and the server tunes from scratch. Standard library only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = "TLLM_AUTOTUNER_CACHE_PATH"


def host_gpu() -> tuple[str, str] | None:
    """(name, "sm90") of this host's GPUs when they are all the same model, else None."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = {tuple(c.strip() for c in line.rsplit(",", 1)) for line in out.splitlines() if "," in line}
    if len(rows) != 1:
        return None
    name, cap = rows.pop()
    return name, "sm" + cap.replace(".", "")


def choose(index: list[dict], gpu: tuple[str, str] | None) -> dict | None:
    if gpu is None:
        return None
    return next((e for e in index if (e["gpu_name"], e["gpu_arch"]) == gpu), None)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: select_autotuner_cache.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.pop(ENV, None)
    gpu = host_gpu()
    entry = choose(json.loads((HERE / "index.json").read_text("utf-8")), gpu)
    if entry is not None and gpu is not None:
        env[ENV] = str(HERE / entry["dir"] / entry["cache_file"])
        print(f"[trtbuild] AutoTuner cache for {gpu[0]} ({gpu[1]}): {env[ENV]}", file=sys.stderr, flush=True)
    else:
        print(
            f"[trtbuild] no AutoTuner cache for this host's GPU {gpu}: tuning from scratch",
            file=sys.stderr,
            flush=True,
        )
    os.execvpe(argv[0], argv, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

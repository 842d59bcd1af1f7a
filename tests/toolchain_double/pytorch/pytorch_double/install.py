"""Installs the PyTorch-backend double: tensorrt_llm package metadata of the version it stands in for,
``nvidia-smi`` (the engine double's) and ``trtllm-serve``. No trtllm-build, no convert_checkpoint.py: the
release it stands in for has neither."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path("/opt/toolchain_double")
sys.path.insert(0, str(ROOT))

from trtllm_double.install import dist_info, script  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trtllm-version", required=True)
    a = ap.parse_args()
    (ROOT / "VERSION").write_text(a.trtllm_version + "\n")
    import sysconfig

    dist_info(Path(sysconfig.get_paths()["purelib"]), "tensorrt_llm", a.trtllm_version)
    script(Path("/usr/local/bin/nvidia-smi"), "trtllm_double.nvidia_smi")
    script(Path("/usr/local/bin/trtllm-serve"), "pytorch_double.serve")


if __name__ == "__main__":
    main()

"""Installs the toolchain double into the image: entry points, the example script path of the NGC
image, and package metadata (dist-info) so importlib.metadata reports the versions."""

from __future__ import annotations

import argparse
import os
import sysconfig
from pathlib import Path

ROOT = Path("/opt/toolchain_double")


def dist_info(site: Path, name: str, ver: str) -> None:
    d = site / f"{name}-{ver}.dist-info"
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n"
        f"Summary: TOOLCHAIN DOUBLE metadata (test stand-in, not the NVIDIA package)\n")
    (d / "INSTALLER").write_text("toolchain-double\n")
    (d / "RECORD").write_text("")


def script(path: Path, module: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/usr/bin/python3\n# TOOLCHAIN DOUBLE (test stand-in)\nimport sys\n"
                    f"sys.path.insert(0, {str(ROOT)!r})\nfrom {module} import main\nsys.exit(main())\n")
    os.chmod(path, 0o755)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trtllm-version", required=True)
    ap.add_argument("--tensorrt-version", required=True)
    a = ap.parse_args()
    (ROOT / "VERSION").write_text(a.trtllm_version + "\n")
    site = Path(sysconfig.get_paths()["purelib"])  # /usr/local/lib/python3.11/dist-packages on Debian
    dist_info(site, "tensorrt_llm", a.trtllm_version)
    dist_info(site, "tensorrt", a.tensorrt_version)
    script(Path("/usr/local/bin/trtllm-build"), "trtllm_double.build")
    script(Path("/usr/local/bin/nvidia-smi"), "trtllm_double.nvidia_smi")
    script(Path("/app/tensorrt_llm/examples/models/core/llama/convert_checkpoint.py"), "trtllm_double.convert")


if __name__ == "__main__":
    main()

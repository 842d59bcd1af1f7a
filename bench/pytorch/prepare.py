"""Benchmark: preparing a PyTorch-backend artifact vs fetching the prepared one.

Runs the real CLI through the real Docker Engine with the PyTorch-backend toolchain double
(tests/toolchain_double/pytorch_fixture.py; needs dockerd, tests/services/local_registry.sh and the quantize
extras). On a tiny random Llama (CPU calibration, FP8 + FP8 KV cache) it measures:
  prepare      `trtbuild build`: quantize (ModelOpt HF export in the container), verify, publish checkpoint
               and serve config;
  serve-only   `trtbuild build` after changing only [serve]: a new config, no container, no quantization;
  cache hit    `trtbuild build` again: nothing runs;
  fetch        `trtbuild pull <serve config> DEST --checkpoint-dest DIR` into fresh directories (verified).
On a GPU host the prepare row grows with the model (calibration + export of every weight) while fetch grows
only with its bytes; the ratio here is a floor.

    python3 bench/pytorch/prepare.py [--runs 3] [--hidden 256 --layers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.toolchain_double.fixture import host_python_mounts  # noqa: E402
from tests.toolchain_double.pytorch_fixture import build_and_push, write_pytorch_toolchains_toml  # noqa: E402

RECIPE = """name = "bench-pytorch"
[model]
source = "file://{model}"
dtype = "float16"
[quantization]
format = "fp8"
kv_cache = "fp8"
device = "cpu"
[quantization.calibration]
samples = 16
max_seq_len = 64
batch_size = 4
[target]
gpu_arch = "sm90"
toolchain = "double-1.3.0rc26"
backend = "pytorch"
[serve]
max_batch_size = {batch}
max_seq_len = 128
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    a = ap.parse_args()
    import docker

    from tests.tiny_models import make_tiny_llama

    ref = build_and_push(docker.from_env())
    with tempfile.TemporaryDirectory(prefix="bench-pytorch-") as tmp:
        root = Path(tmp)
        model = make_tiny_llama(root / "model", hidden_size=a.hidden, num_hidden_layers=a.layers)
        env = {
            **os.environ,
            "TRTBUILD_TOOLCHAINS": str(write_pytorch_toolchains_toml(root / "toolchains.toml", ref)),
            "TRTBUILD_HOME": str(root / "home"),
            "TRTBUILD_DB_URL": f"sqlite:///{root / 'registry.db'}",
            "TRTBUILD_STORE_URL": f"file://{root / 'store'}",
        }
        mounts, penv = host_python_mounts()
        flags = ["--gpus", "0", "--json", "--env", f"PYTHONPATH={penv['PYTHONPATH']}"]
        flags += [x for m in mounts for x in ("--mount", f"{m.source}:{m.target}:ro")]
        hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
        if hard != resource.RLIM_INFINITY:  # a sandboxed Docker Engine that cannot raise memlock
            flags += ["--memlock-limit", str(hard)]

        def cli(*args: str) -> tuple[float, dict]:
            t0 = time.perf_counter()
            p = subprocess.run(
                [sys.executable, "-m", "trtbuild", *args], env=env, cwd=REPO, capture_output=True, text=True
            )
            seconds = time.perf_counter() - t0
            if p.returncode != 0:
                raise SystemExit(f"trtbuild {' '.join(args[:2])} failed:\n{p.stderr}")
            return seconds, json.loads(p.stdout)

        def recipe(batch: int) -> str:
            path = root / "r.toml"
            path.write_text(RECIPE.format(model=model, batch=batch))
            return str(path)

        prepare_s, first = cli("build", recipe(8), *flags)
        assert first["steps_run"][0] == "quantize", first
        rows: dict[str, list[float]] = {"serve-only": [], "cache hit": [], "fetch": []}
        for i in range(a.runs):
            s, out = cli("build", recipe(16 + i), *flags)
            assert out["steps_run"] == ["serve-config", "publish"], out
            rows["serve-only"].append(s)
            s, out = cli("build", recipe(16 + i), *flags)
            assert out["cache_hit"], out
            rows["cache hit"].append(s)
            s, out = cli(
                "pull",
                first["hash"],
                str(root / f"cfg{i}"),
                "--checkpoint-dest",
                str(root / f"ck{i}"),
                "--json",
            )
            rows["fetch"].append(s)
        size = sum(p.stat().st_size for p in (root / "ck0").rglob("*") if p.is_file())
    print(
        f"PyTorch backend, tiny Llama hidden {a.hidden} x {a.layers} layers, checkpoint {size / 1e6:.1f} MB, "
        f"{a.runs} runs"
    )
    print(f"{'step':<12} {'median s':>9} {'min s':>7}")
    print(f"{'prepare':<12} {prepare_s:>9.2f} {prepare_s:>7.2f}")
    for name, values in rows.items():
        print(f"{name:<12} {statistics.median(values):>9.2f} {min(values):>7.2f}")
    print(f"prepare / fetch = {prepare_s / statistics.median(rows['fetch']):.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

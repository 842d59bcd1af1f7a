"""Benchmark: what a `trtbuild build` costs when nothing, or little, needs building.

Runs the real CLI through the real Docker Engine with the toolchain double (tests/toolchain_double; needs
dockerd and tests/services/local_registry.sh). Measures, in one run on a tiny Llama:
  full build (fetch/convert/build/verify/publish), shapes-only rebuild (only trtllm-build runs),
  cache hit (no container may start), and `docker run --rm <double> true` as the peer floor
  (the cost of starting a single container).
Targets: cache hit < 0.5 s; shapes-only rebuild well under a full build.

    python3 bench/build_cache.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.toolchain_double.fixture import make_tiny_llama, write_toolchains_toml  # noqa: E402
from tests.toolchain_double.publish import publish  # noqa: E402

RECIPE = """name = "bench-tiny"
[model]
source = "file://{model}"
dtype = "float16"
[parallelism]
tp = 2
[limits]
max_batch_size = {batch}
max_input_len = 64
max_seq_len = 128
[target]
gpu_arch = "sm90"
toolchain = "double-1.1.0"
"""


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    refs = publish(("1.1.0",))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = make_tiny_llama(root / "model")
        toolchains = root / "toolchains.toml"
        write_toolchains_toml(toolchains, refs)
        recipe = root / "recipe.toml"
        memlock = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
        flags = ["--gpus", "0"] + (
            [] if memlock == resource.RLIM_INFINITY else ["--memlock-limit", str(memlock)]
        )
        build = [sys.executable, "-m", "trtbuild", "build", str(recipe), *flags]
        rows: dict[str, list[float]] = {
            "full build": [],
            "shapes-only rebuild": [],
            "cache hit": [],
            "docker run --rm double true (peer floor)": [],
        }
        for run in range(args.runs):
            env = {
                **os.environ,
                "TRTBUILD_TOOLCHAINS": str(toolchains),
                "TRTBUILD_HOME": str(root / f"home{run}"),
            }
            recipe.write_text(RECIPE.format(model=model, batch=4))
            rows["full build"].append(timed(build, env))
            recipe.write_text(RECIPE.format(model=model, batch=8 + run))
            rows["shapes-only rebuild"].append(timed(build, env))
            rows["cache hit"].append(timed(build, env))
            rows["docker run --rm double true (peer floor)"].append(
                timed(["docker", "run", "--rm", refs["1.1.0"], "true"], env)
            )
    full = statistics.median(rows["full build"])
    print(f"{'case':42} {'median s':>9} {'min s':>7} {'× full':>7}")
    for name, times in rows.items():
        median = statistics.median(times)
        print(f"{name:42} {median:9.3f} {min(times):7.3f} {median / full:7.2f}")
    hit = statistics.median(rows["cache hit"])
    print(
        f"\ntarget: cache hit < 0.5 s -> {'met' if hit < 0.5 else 'MISSED'} ({hit:.3f} s, {args.runs} runs)"
    )


if __name__ == "__main__":
    main()

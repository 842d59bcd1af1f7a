"""Benchmark: wall time of `trtbuild --help` (target < 250 ms), against `python3 -c pass` and `pip --version`
as peers in the same run. Prints a table. Usage: python3 bench/cli_startup.py [runs]"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
COMMANDS = {
    "python3 -c pass (floor)": [sys.executable, "-c", "pass"],
    "trtbuild --help": [shutil.which("trtbuild") or "trtbuild", "--help"],
    "trtbuild validate (5 recipes)": [
        shutil.which("trtbuild") or "trtbuild",
        "validate",
        "recipes/llama3-70b-fp8.toml",
        "recipes/llama3-8b-int4-awq.toml",
        "recipes/llama3-8b-int8-sq.toml",
        "recipes/llama3-8b-bf16.toml",
        "recipes/mistral-7b-fp8.toml",
    ],
    "pip --version (peer CLI)": [sys.executable, "-m", "pip", "--version"],
}


def measure(argv: list[str]) -> list[float]:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    rows = {name: measure(argv) for name, argv in COMMANDS.items()}
    floor = statistics.median(rows["python3 -c pass (floor)"])
    print(f"{'command':34} {'median ms':>10} {'p90 ms':>8} {'× floor':>8}")
    for name, times in rows.items():
        med = statistics.median(times)
        p90 = sorted(times)[int(len(times) * 0.9) - 1]
        print(f"{name:34} {med:10.1f} {p90:8.1f} {med / floor:8.2f}")
    help_ms = statistics.median(rows["trtbuild --help"])
    print(f"\ntarget: trtbuild --help < 250 ms -> {'met' if help_ms < 250 else 'MISSED'} ({help_ms:.0f} ms)")


if __name__ == "__main__":
    main()

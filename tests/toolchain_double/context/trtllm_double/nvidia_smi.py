"""Double of nvidia-smi (TOOLCHAIN DOUBLE, no GPU behind it).

Reports TOOLCHAIN_DOUBLE_GPUS (default 1) × "NVIDIA H100 80GB HBM3", compute capability 9.0,
81559 MiB, driver TOOLCHAIN_DOUBLE_DRIVER (default 535.104.05) with CUDA TOOLCHAIN_DOUBLE_CUDA
(default 12.2), in nvidia-smi's formats: the summary table, ``-L`` and ``--query-gpu`` CSV.
"""

from __future__ import annotations

import os
import sys

FIELDS = {
    "index": lambda g: str(g["index"]),
    "name": lambda g: g["name"],
    "compute_cap": lambda g: g["compute_cap"],
    "driver_version": lambda g: g["driver_version"],
    "memory.total": lambda g: (str(g["memory_mib"]), " MiB"),
    "memory.used": lambda g: ("0", " MiB"),
    "memory.free": lambda g: (str(g["memory_mib"]), " MiB"),
    "uuid": lambda g: f"GPU-00000000-0000-0000-0000-{g['index']:012d}",
    "pci.bus_id": lambda g: f"00000000:{0x18 + g['index']:02X}:00.0",
    "count": lambda g: str(g["count"]),
}


def gpus() -> list[dict]:
    n = int(os.environ.get("TOOLCHAIN_DOUBLE_GPUS", "1"))
    driver = os.environ.get("TOOLCHAIN_DOUBLE_DRIVER", "535.104.05")
    return [{"index": i, "count": n, "name": "NVIDIA H100 80GB HBM3", "compute_cap": "9.0",
             "driver_version": driver, "memory_mib": 81559} for i in range(n)]


def query(fields: list[str], fmt: set[str]) -> int:
    for f in fields:
        if f not in FIELDS:
            print(f'Field "{f}" is not a valid field to query.', file=sys.stderr)
            return 2
    if "csv" not in fmt:
        print("Only CSV output format is supported by this double (--format=csv[,noheader][,nounits])",
              file=sys.stderr)
        return 2
    if "noheader" not in fmt:
        print(", ".join(f + (" [MiB]" if f.startswith("memory") and "nounits" not in fmt else "")
                        for f in fields))
    for g in gpus():
        cells = []
        for f in fields:
            v = FIELDS[f](g)
            if isinstance(v, tuple):
                v = v[0] if "nounits" in fmt else v[0] + v[1]
            cells.append(v)
        print(", ".join(cells))
    return 0


def table() -> None:
    """The summary table, in the layout of the 535-series drivers."""
    cuda = os.environ.get("TOOLCHAIN_DOUBLE_CUDA", "12.2")
    driver = os.environ.get("TOOLCHAIN_DOUBLE_DRIVER", "535.104.05")
    rule = "+" + "-" * 87 + "+"
    print(rule)
    print(f"| NVIDIA-SMI {driver:<23}Driver Version: {driver:<13}CUDA Version: {cuda:<9}|")
    print("|-----------------------------------------+----------------------+----------------------+")
    print("| GPU  Name                 Persistence-M | Bus-Id        Disp.A | Volatile Uncorr. ECC |")
    print("| Fan  Temp   Perf          Pwr:Usage/Cap |         Memory-Usage | GPU-Util  Compute M. |")
    print("|=========================================+======================+======================|")
    for g in gpus():
        mem = f"0MiB / {g['memory_mib']}MiB"
        cell = f" {g['index']:>3}  {g['name']}".ljust(36) + " On  "
        print(f"|{cell}| {FIELDS['pci.bus_id'](g)} Off |{'0':>21} |")
        print(f"| N/A   30C    P0             70W / 700W | {mem:>20} |      0%      Default |")
    print(rule)
    print("TOOLCHAIN DOUBLE: no GPU is behind this nvidia-smi")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    fields: list[str] | None = None
    fmt: set[str] = set()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--query-gpu="):
            fields = [f.strip() for f in a.split("=", 1)[1].split(",") if f.strip()]
        elif a == "--query-gpu" and i + 1 < len(argv):
            i += 1
            fields = [f.strip() for f in argv[i].split(",") if f.strip()]
        elif a.startswith("--format="):
            fmt = {p.strip() for p in a.split("=", 1)[1].split(",")}
        elif a in ("-L", "--list-gpus"):
            for g in gpus():
                print(f"GPU {g['index']}: {g['name']} (UUID: {FIELDS['uuid'](g)})")
            return 0
        else:
            print(f'Invalid combination of input arguments. Please run "nvidia-smi -h" for help. ({a})',
                  file=sys.stderr)
            return 2
        i += 1
    if fields is not None:
        return query(fields, fmt)
    table()
    return 0


if __name__ == "__main__":
    sys.exit(main())

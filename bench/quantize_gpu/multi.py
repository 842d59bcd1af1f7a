"""Issue 16: the quantize driver with the model split over devices, against the same model on one GPU.

``python3 run.py multi --work DIR --out DIR`` (``STEP=multi bash run.sh``) does:
 1. makes the random 1.1B Llama (``run.py make``) while ModelOpt's two CUDA extensions compile
    (``run.py warm``, one process each);
 2. runs groups, each one process calling the driver in-process (``run_quantize``, gate measured, not
    enforced) for FP8 + FP8 KV cache, INT8 SmoothQuant and INT4 AWQ at tp 1 and tp 2:
      ref      CUDA_VISIBLE_DEVICES=0: the one-GPU reference, plus a second tp-1 run of each format
               (the run-to-run floor);
      split    (default with >= 2 GPUs) CUDA_VISIBLE_DEVICES=0,1: the driver's own loading splits the
               model over both GPUs (balanced device_map);
      offload  (default with one GPU) CUDA_VISIBLE_DEVICES=0 with the weights capped at OFFLOAD_GIB per
               GPU and CPU offload on: the layers past the cap live in host memory and run on GPU 0 (the
               driver's split path, the second device being the CPU);
    QGPU_GROUPS=ref,split,offload picks the groups;
 3. compares each export with the ref export of the same format and tp, tensor by tensor (scales and
    weights apart: bit-identical count, max abs and max relative difference, INT4 unpacked), and the
    gate figures side by side.
It writes results.json, table.md and tensors.json (per exported tensor: dtype, shape, sha256, abs max,
L2 norm, for every run: what a later run on other GPUs compares with) under --out, and prints the tables.
With QGPU_SMOKE=1 (CPU, tiny model) the groups are ref and ``again`` (ref re-run) to check the script.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from run import CALIB, DEVICE, MODEL, ROOT, SMOKE

FORMAT_RUNS = (("fp8", "fp8"), ("int8_sq", None), ("int4_awq", None))
TPS = (1, 2)
OFFLOAD_GIB = 1.0  # of the 2.06 GiB model: about half the decoder layers go to the CPU
GROUPS: dict[str, dict] = {
    "ref": {"visible": "0", "repeat": True},
    "split": {"visible": "0,1", "min_gpus": 2},
    "offload": {"visible": "0", "max_gpu_memory_gib": OFFLOAD_GIB, "cpu_offload": True},
    "again": {"smoke_only": True},
}
GIB = 1024**3
# sha256[:16] of every tensor of the ref group's exports from the one-H200 run of RESULTS.md
STORED_REFERENCE = Path(__file__).with_name("reference_h200.json.gz")


def run_name(group: str, fmt: str, tp: int, repeat: bool = False) -> str:
    return f"{group}_{fmt}_tp{tp}{'_repeat' if repeat else ''}"


def group_runs(group: str) -> list[tuple[str, str | None, int, bool]]:
    runs = [(fmt, kv, tp, False) for fmt, kv in FORMAT_RUNS for tp in TPS]
    if GROUPS[group].get("repeat"):
        runs += [(fmt, kv, 1, True) for fmt, kv in FORMAT_RUNS]
    return runs


def tensor_digests(d: Path) -> dict:
    """Per rank file and tensor: [dtype, shape, sha256[:16], abs max, L2 norm] of the exported tensors."""
    import torch
    from safetensors import safe_open

    out: dict = {}
    for f in sorted(d.glob("rank*.safetensors")):
        rows = {}
        with safe_open(str(f), framework="pt") as fh:
            for k in sorted(fh.keys()):
                t = fh.get_tensor(k).contiguous()
                raw = t.reshape(-1).view(torch.uint8).numpy().tobytes()
                v = t.to(torch.float64)
                rows[k] = [
                    str(t.dtype).replace("torch.", ""),
                    list(t.shape),
                    hashlib.sha256(raw).hexdigest()[:16],
                    float(v.abs().max()) if v.numel() else 0.0,
                    float(v.norm()) if v.numel() else 0.0,
                ]
        out[f.name] = rows
    return out


def _summary(rep: dict, d: Path, wall: float) -> dict:
    mem = rep["memory"]
    return {
        "process_wall_s": wall,
        "timings": rep["timings"],
        "peak_gpu_bytes_per_gpu": mem.get("peak_gpu_bytes_per_gpu"),
        "placement": mem.get("placement"),
        "devices_used": mem.get("devices_used"),
        "accuracy": rep["accuracy"],
        "quantization": rep["export"]["quantization"],
        "mapping": rep["export"]["mapping"],
        "bytes": rep["export"]["bytes"],
        "tensors": tensor_digests(d),
    }


def step_group(work: Path, group: str) -> dict:
    """One group's runs in this process; writes work/group_<group>.json and returns it."""
    import gc

    import torch

    sys.path.insert(0, str(ROOT))
    from trtbuild.quantize import QuantizeOptions, run_quantize

    spec = GROUPS[group]
    res: dict = {"visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "runs": {}}
    if DEVICE == "cuda":
        res["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    for fmt, kv, tp, repeat in group_runs(group):
        name = run_name(group, fmt, tp, repeat)
        d = work / name
        opts = QuantizeOptions(
            model_dir=str(work / "model"),
            output_dir=str(d),
            qformat=fmt,
            kv_cache_dtype=kv,
            tp_size=tp,
            calib_size=CALIB["calib_size"],
            batch_size=CALIB["batch_size"],
            calib_max_seq_length=CALIB["calib_max_seq_length"],
            seed=CALIB["seed"],
            device=DEVICE,
            dtype="auto",
            accuracy_gate=False,
            max_gpu_memory_gib=spec.get("max_gpu_memory_gib"),
            cpu_offload=bool(spec.get("cpu_offload")),
        )
        t0 = time.perf_counter()
        try:
            rep = run_quantize(opts, log=lambda m, n=name: print(f"  [{n}] {m}", flush=True))
            res["runs"][name] = _summary(rep, d, time.perf_counter() - t0)
        except Exception as exc:  # record and go on: one broken run must not lose the others
            traceback.print_exc()
            res["runs"][name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        res["runs"][name].update(fmt=fmt, kv=kv, tp=tp, repeat=repeat)
        print(f"group {group}: {name} done in {time.perf_counter() - t0:.1f}s", flush=True)
        gc.collect()
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
        (work / f"group_{group}.json").write_text(json.dumps(res, default=str))
    return res


def _unpack_int4(t):
    """Two signed 4-bit values per int8 (ModelOpt's AWQ packing) -> int16 tensor of twice the elements."""
    import torch

    x = t.to(torch.int16)
    low = ((x & 0x0F) ^ 0x08) - 0x08
    high = x >> 4
    return torch.stack([low, high], dim=-1)


def compare_exports(a: Path, b: Path, awq: bool) -> dict:
    """Tensor by tensor, ``a`` against the reference ``b``: per kind (scale / weight) the number of tensors,
    bit-identical ones, max abs and max relative difference (|a-b| / max(|a|, |b|)), share of differing
    elements, and the worst tensor."""
    import torch
    from safetensors import safe_open

    kinds: dict = {}
    problems = []
    files_a = sorted(p.name for p in a.glob("rank*.safetensors"))
    files_b = sorted(p.name for p in b.glob("rank*.safetensors"))
    if files_a != files_b:
        return {"problems": [f"rank files {files_a} != {files_b}"]}
    for f in files_a:
        with safe_open(str(a / f), framework="pt") as fa, safe_open(str(b / f), framework="pt") as fb:
            ka, kb = set(fa.keys()), set(fb.keys())
            if ka != kb:
                problems.append(f"{f}: tensors only in one: {sorted(ka ^ kb)[:5]}")
            for k in sorted(ka & kb):
                ta, tb = fa.get_tensor(k), fb.get_tensor(k)
                kind = "scale" if "scaling_factor" in k or k.endswith("scale") else "weight"
                s = kinds.setdefault(
                    kind,
                    {
                        "tensors": 0,
                        "identical": 0,
                        "max_abs": 0.0,
                        "max_rel": 0.0,
                        "elements": 0,
                        "differing": 0,
                        "worst": None,
                    },
                )
                s["tensors"] += 1
                if ta.dtype != tb.dtype or ta.shape != tb.shape:
                    problems.append(f"{f}:{k}: {ta.dtype}{list(ta.shape)} != {tb.dtype}{list(tb.shape)}")
                    continue
                s["elements"] += ta.numel()
                if torch.equal(ta.reshape(-1).view(torch.uint8), tb.reshape(-1).view(torch.uint8)):
                    s["identical"] += 1
                    continue
                if awq and kind == "weight" and ta.dtype == torch.int8:
                    va, vb = _unpack_int4(ta).double(), _unpack_int4(tb).double()
                else:
                    va, vb = ta.double(), tb.double()
                diff = (va - vb).abs()
                den = torch.maximum(va.abs(), vb.abs())
                rel = torch.where(den > 0, diff / den.clamp_min(1e-300), torch.zeros_like(diff))
                s["differing"] += int((diff > 0).sum())
                if float(diff.max()) >= s["max_abs"]:
                    s["worst"] = f"{f}:{k}"
                s["max_abs"] = max(s["max_abs"], float(diff.max()))
                s["max_rel"] = max(s["max_rel"], float(rel.max()))
    return {"kinds": kinds, "problems": problems}


def _popen(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("run.py")), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _result_of(proc: subprocess.Popen, what: str) -> dict:
    out, _ = proc.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stdout.write(out[-6000:])
        return {"error": f"{what} failed with exit {proc.returncode}"}
    return json.loads(lines[-1][len("RESULT ") :])


def n_gpus() -> int:
    if SMOKE:
        return 0
    try:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    except FileNotFoundError:
        return 0
    return sum(1 for ln in smi.stdout.splitlines() if ln.startswith("GPU "))


def step_multi(work: Path, out: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    gpus = n_gpus()
    res: dict = {"calib": CALIB, "model": MODEL, "n_gpus": gpus, "groups": {}}
    if gpus:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        res["gpu"] = smi.stdout.strip()
    print("gpus:", gpus, res.get("gpu", "none"), flush=True)

    def save() -> None:
        (out / "results.json").write_text(json.dumps(res, indent=1, default=str))

    make = _popen(["make", "--work", str(work)])
    # both extensions compile at once (each ~1 min on one core's worth of nvcc), beside the model's making
    warm = (
        [_popen(["warm"], {"QGPU_WARM": ext}) for ext in ("get_cuda_ext", "get_cuda_ext_fp8")] if gpus else []
    )
    res["make"] = _result_of(make, "make")
    res["warm"] = [_result_of(w, "warm") for w in warm]
    print("make:", res["make"], "\nwarm:", res["warm"], flush=True)
    save()
    # one GPU: ref + offload; several: ref + split (offload was measured on one GPU; QGPU_GROUPS overrides)
    default = "ref,again" if SMOKE else ("ref,split" if gpus >= 2 else "ref,offload")
    names = os.environ.get("QGPU_GROUPS", default).split(",")
    for g in names:
        spec = GROUPS[g]
        env = {"CUDA_VISIBLE_DEVICES": spec["visible"]} if gpus and "visible" in spec else {}
        t0 = time.perf_counter()
        print(f"=== group {g} ({env or 'CPU'})", flush=True)
        run_py = str(Path(__file__).with_name("run.py"))
        argv = [sys.executable, run_py, "group", "--work", str(work), "--group", g]
        proc = subprocess.run(argv, env={**os.environ, **env})
        path = work / f"group_{g}.json"
        res["groups"][g] = json.loads(path.read_text()) if path.is_file() else {"runs": {}}
        res["groups"][g].update(exit=proc.returncode, wall_s=time.perf_counter() - t0)
        save()
    # compare every group's exports with the reference
    res["compare"] = {}
    for g in names:
        for fmt, _kv, tp, repeat in group_runs(g):
            if g == "ref" and not repeat:
                continue
            name, ref = run_name(g, fmt, tp, repeat), run_name("ref", fmt, tp)
            if (work / name / "config.json").is_file() and (work / ref / "config.json").is_file():
                res["compare"][name] = compare_exports(work / name, work / ref, fmt == "int4_awq")
    res["vs_stored_reference"] = vs_stored_reference(res["groups"].get("ref", {}).get("runs", {}))
    res["total_s"] = time.perf_counter() - t_start
    tensors = {g: {n: r.pop("tensors", None) for n, r in v["runs"].items()} for g, v in res["groups"].items()}
    (out / "tensors.json").write_text(json.dumps(tensors, separators=(",", ":")))
    save()
    table = render_multi(res)
    (out / "table.md").write_text(table + "\n")
    print(table)


def vs_stored_reference(runs: dict) -> dict:
    """Per ref run: how many exported tensors are byte-identical (by sha256) to the stored H200 reference."""
    import gzip

    if SMOKE or not STORED_REFERENCE.is_file():
        return {}
    stored = json.loads(gzip.decompress(STORED_REFERENCE.read_bytes()))["runs"]
    out = {}
    for name, run in runs.items():
        if name not in stored or not run.get("tensors"):
            continue
        pairs = [
            (sha, run["tensors"].get(f, {}).get(k, [None] * 3)[2])
            for f, rows in stored[name].items()
            for k, sha in rows.items()
        ]
        out[name] = {"tensors": len(pairs), "identical": sum(a == b for a, b in pairs)}
    return out


def _gib(b) -> str:
    return "-" if b is None else f"{b / GIB:.2f}"


def render_multi(r: dict) -> str:
    rows = [
        "| group | format | tp | load s | calibrate s | gate s | export s | peak GiB per GPU | devices "
        "(top-level modules) | top-1 | mean KL | max KL |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for g, grp in r["groups"].items():
        for run in grp["runs"].values():
            kv, again = " + KV " + run["kv"] if run["kv"] else "", " (again)" if run["repeat"] else ""
            fmt = run["fmt"] + kv + again
            if "error" in run:
                rows.append(f"| {g} | {fmt} | {run['tp']} | ERROR: {run['error'][:300]} | | | | | | | | |")
                continue
            t, a = run["timings"], run["accuracy"] or {}
            peaks = " / ".join(_gib(p) for p in (run["peak_gpu_bytes_per_gpu"] or [None]))
            whole = "GPU 0 (whole model)" if DEVICE == "cuda" else "CPU"
            used = ", ".join(f"{k}: {v}" for k, v in (run["devices_used"] or {}).items()) or whole
            rows.append(
                f"| {g} | {fmt} | {run['tp']} | {t['load_s']:.2f} | {t['calibrate_s']:.2f} | "
                f"{t['gate_s']:.2f} | "
                f"{t['export_s']:.2f} | {peaks} | {used} | {a.get('top1_agreement', float('nan')):.4f} | "
                f"{a.get('mean_kl', float('nan')):.5f} | {a.get('max_kl', float('nan')):.4f} |"
            )
    cmp_rows = [
        "",
        "| run vs ref (same format, tp) | scales identical | scales max abs / rel | weights identical | "
        "weights max abs / rel | differing elements | Δ top-1 | Δ mean KL | problems |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ref_runs = r["groups"].get("ref", {}).get("runs", {})
    runs = {n: run for grp in r["groups"].values() for n, run in grp["runs"].items()}
    for name, c in r.get("compare", {}).items():
        k = c.get("kinds", {})
        sc, w = k.get("scale", {}), k.get("weight", {})
        group, rest = name.split("_", 1)
        ref = ref_runs.get("ref_" + rest.removesuffix("_repeat"), {})
        a, ra = (runs.get(name, {}).get("accuracy") or {}), (ref.get("accuracy") or {})
        d_top1 = a.get("top1_agreement", 0) - ra.get("top1_agreement", 0) if a and ra else float("nan")
        d_kl = a.get("mean_kl", 0) - ra.get("mean_kl", 0) if a and ra else float("nan")
        differing = sc.get("differing", 0) + w.get("differing", 0)
        elements = sc.get("elements", 0) + w.get("elements", 0)
        cmp_rows.append(
            f"| {name} | {sc.get('identical', 0)}/{sc.get('tensors', 0)} | "
            f"{sc.get('max_abs', 0):.3g} / {sc.get('max_rel', 0):.3g} | "
            f"{w.get('identical', 0)}/{w.get('tensors', 0)} | "
            f"{w.get('max_abs', 0):.3g} / {w.get('max_rel', 0):.3g} | {differing} of {elements} | "
            f"{d_top1:+.4f} | {d_kl:+.5f} | {'; '.join(c.get('problems', []))[:200] or '-'} |"
        )
    stored = [f"{n} {v['identical']}/{v['tensors']}" for n, v in r.get("vs_stored_reference", {}).items()]
    tail = ["", "ref vs the stored H200 reference (identical tensors): " + (", ".join(stored) or "-")]
    return "\n".join(rows + cmp_rows + tail + ["", f"total {r.get('total_s', 0):.0f}s"])


def _amax(model) -> dict:
    """Every enabled quantizer's amax (float32, CPU), by name."""
    import torch

    out = {}
    for name, mod in model.named_modules():
        amax = getattr(mod, "amax", None) if getattr(mod, "is_enabled", False) else None
        if isinstance(amax, torch.Tensor):
            out[name] = amax.detach().float().cpu()
    return out


def _layer_split(a: Path, b: Path) -> dict:
    """Which decoder layers' tensors differ between two exports (by bytes): layer -> differing count."""
    import torch
    from safetensors import safe_open

    diff: dict = {}
    for f in sorted(p.name for p in a.glob("rank*.safetensors")):
        with safe_open(str(a / f), framework="pt") as fa, safe_open(str(b / f), framework="pt") as fb:
            for k in fa.keys():
                ta, tb = fa.get_tensor(k), fb.get_tensor(k)
                if not torch.equal(ta.reshape(-1).view(torch.uint8), tb.reshape(-1).view(torch.uint8)):
                    layer = k.split(".")[2] if k.startswith("transformer.layers.") else k
                    diff[layer] = diff.get(layer, 0) + 1
    return diff


def step_exportdev(work: Path, out: Path) -> None:
    """Where the offload run's differences come from: FP8 + FP8 KV, tp 1, the driver on one GPU and with
    CPU offload; amax of every quantizer compared, and the one-GPU model exported again on the CPU."""
    import torch
    from modelopt.torch.export import export_tensorrt_llm_checkpoint

    sys.path.insert(0, str(ROOT))
    from trtbuild.quantize import QuantizeOptions, run_quantize

    out.mkdir(parents=True, exist_ok=True)
    res: dict = {}
    amax: dict = {}
    kept: dict = {}
    for group in ("ref", "offload"):
        spec = GROUPS[group]
        d = work / f"dev_{group}"

        def hook(m, g=group):
            amax[g] = _amax(m)
            if g == "ref":
                kept["model"] = m

        opts = QuantizeOptions(
            model_dir=str(work / "model"),
            output_dir=str(d),
            qformat="fp8",
            kv_cache_dtype="fp8",
            calib_size=CALIB["calib_size"],
            batch_size=CALIB["batch_size"],
            calib_max_seq_length=CALIB["calib_max_seq_length"],
            seed=CALIB["seed"],
            device=DEVICE,
            accuracy_gate=False,
            max_gpu_memory_gib=spec.get("max_gpu_memory_gib"),
            cpu_offload=bool(spec.get("cpu_offload")),
        )
        rep = run_quantize(opts, post_calibration_hook=hook, log=lambda m: print("  " + m, flush=True))
        res[group] = {"devices_used": rep["memory"].get("devices_used"), "accuracy": rep["accuracy"]}
        if group == "ref":  # the same calibrated model, exported again with every tensor on the CPU
            model = kept.pop("model").to("cpu")
            with torch.no_grad():
                export_tensorrt_llm_checkpoint(
                    model,
                    decoder_type="llama",
                    dtype=getattr(torch, rep["format"]["export_dtype"]),
                    export_dir=work / "dev_ref_cpu",
                    inference_tensor_parallel=1,
                    inference_pipeline_parallel=1,
                )
            del model
    a, b = amax["ref"], amax["offload"]
    both = [n for n in a if n in b and a[n].shape == b[n].shape]
    same = [n for n in both if torch.equal(a[n], b[n])]
    worst = max((float((a[n] - b[n]).abs().max()) for n in both), default=0.0)
    res["amax"] = {"quantizers": len(a), "in_both": len(both), "identical": len(same), "max_abs": worst}
    res["layers_differing"] = {
        "ref_gpu_vs_ref_cpu_export": _layer_split(work / "dev_ref", work / "dev_ref_cpu"),
        "offload_vs_ref_gpu_export": _layer_split(work / "dev_offload", work / "dev_ref"),
        "offload_vs_ref_cpu_export": _layer_split(work / "dev_offload", work / "dev_ref_cpu"),
    }
    res["compare_ref_cpu_export"] = compare_exports(work / "dev_ref_cpu", work / "dev_ref", False)
    (out / "exportdev.json").write_text(json.dumps(res, indent=1, default=str))
    print("EXPORTDEV " + json.dumps(res, default=str), flush=True)

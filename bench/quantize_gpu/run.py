"""GPU bench of the quantize driver against bare ModelOpt calls, in one go (see RESULTS.md).

``python3 run.py all --work DIR --out DIR`` does, each step in its own process (clean GPU peaks):
  make    a ~1.1B-parameter Llama (hidden 2048, intermediate 8192, 16 layers, 32 heads / 8 KV heads,
          vocab 32000, untied) with random bf16 weights (initialised as tests/tiny_models.py does), made
          on the GPU, saved as an HF checkpoint, plus a BPE tokenizer trained offline on the built-in
          calibration passages;
  warm    compiles ModelOpt's CUDA extensions into TORCH_EXTENSIONS_DIR (timed), then loads them again
          from that cache in a fresh process (timed): what a persistent cache saves each build;
  bare    per format: AutoModelForCausalLM.from_pretrained -> mtq.quantize(<FORMAT>_CFG) on the same
          calibration tensors the driver builds -> export_tensorrt_llm_checkpoint for tp 1 and tp 2;
  driver  per format and tp: ``python3 -m trtbuild.quantize`` with quantize.py flags (gate measured, not
          enforced), reading its quantize_report.json.
It prints a table (driver vs bare: load, calibrate, export, in-process total, peak GPU memory, checkpoint
bytes) and writes results.json + table.md under --out.

``python3 run.py multi --work DIR --out DIR`` (issue 16) is the split-model comparison; see multi.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FORMATS = ("fp8", "int4_awq")
CALIB = {"calib_size": 128, "batch_size": 8, "calib_max_seq_length": 512, "seed": 1234}
MODEL = dict(
    vocab_size=32000,
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=4096,
)
# QGPU_SMOKE=1: a tiny model on the CPU, to check this script without a GPU
SMOKE = os.environ.get("QGPU_SMOKE") == "1"
if SMOKE:
    MODEL.update(
        vocab_size=512,
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    CALIB.update(calib_size=8, calib_max_seq_length=64)
DEVICE = "cpu" if SMOKE else "cuda"


def ckpt_bytes(d: Path) -> int:
    return sum(
        p.stat().st_size for p in d.iterdir() if p.name == "config.json" or p.name.endswith(".safetensors")
    )


def step_make(work: Path) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(ROOT))
    from tests.tiny_models import init_random_llama, train_tokenizer, width_scaled_std

    model_dir = work / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n_tok = train_tokenizer(model_dir, MODEL["vocab_size"], model_max_length=4096)
    tok_s = time.perf_counter() - t0
    cfg = LlamaConfig(
        **MODEL,
        initializer_range=width_scaled_std(MODEL["hidden_size"]),
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(DEVICE):
        model = LlamaForCausalLM(cfg).eval()
    model = model.to(torch.bfloat16)
    init_random_llama(model)  # as tests/tiny_models.py does
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(str(model_dir))
    return {
        "params": params,
        "tokenizer_tokens": n_tok,
        "tokenizer_s": tok_s,
        "make_s": time.perf_counter() - t0,
        "dtype": str(next(model.parameters()).dtype),
        "checkpoint_bytes": sum(p.stat().st_size for p in model_dir.iterdir()),
    }


def _sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def step_warm() -> dict:
    from modelopt.torch.quantization import extensions

    out = {"torch_extensions_dir": os.environ.get("TORCH_EXTENSIONS_DIR")}
    for name in os.environ.get("QGPU_WARM", "get_cuda_ext,get_cuda_ext_fp8").split(","):
        t0 = time.perf_counter()
        ext = getattr(extensions, name)()
        _sync()
        out[name] = {"seconds": time.perf_counter() - t0, "loaded": ext is not None}
    return out


def step_bare(work: Path, fmt: str) -> dict:
    import modelopt.torch.quantization as mtq
    import torch
    from modelopt.torch.export import export_tensorrt_llm_checkpoint
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sys.path.insert(0, str(ROOT))
    from trtbuild.quantize.calib import pack_calibration, read_passages

    model_dir = str(work / "model")
    tok = AutoTokenizer.from_pretrained(model_dir)
    batches = pack_calibration(
        tok,
        read_passages("builtin").calib,
        CALIB["calib_size"],
        CALIB["batch_size"],
        CALIB["calib_max_seq_length"],
        CALIB["seed"],
    ).batches
    cuda = DEVICE == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    _sync()
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.bfloat16 if cuda else torch.float32, device_map=DEVICE if cuda else None
    ).eval()
    _sync()
    load_s = time.perf_counter() - t0
    cfg = {"fp8": mtq.FP8_DEFAULT_CFG, "int4_awq": mtq.INT4_AWQ_CFG}[fmt]

    def loop(m):
        with torch.no_grad():
            for b in batches:
                m(input_ids=b.to(DEVICE), use_cache=False)

    t0 = time.perf_counter()
    model = mtq.quantize(model, cfg, loop)
    _sync()
    calib_s = time.perf_counter() - t0
    peak_calib = torch.cuda.max_memory_allocated() if cuda else 0
    res = {"load_s": load_s, "calibrate_s": calib_s, "peak_after_calib": peak_calib}
    for tp in (1, 2):
        d = work / f"bare_{fmt}_tp{tp}"
        t0 = time.perf_counter()
        with torch.no_grad():
            export_tensorrt_llm_checkpoint(
                model, decoder_type="llama", dtype=torch.bfloat16, export_dir=d, inference_tensor_parallel=tp
            )
        res[f"export_tp{tp}_s"] = time.perf_counter() - t0
        res[f"bytes_tp{tp}"] = ckpt_bytes(d)
        res[f"quantization_tp{tp}"] = json.loads((d / "config.json").read_text())["quantization"]
    res["peak_gpu_bytes"] = torch.cuda.max_memory_allocated() if cuda else 0
    return res


def run_step(args: list[str], env: dict | None = None) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__)), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
        raise SystemExit(f"step {args} failed with exit {proc.returncode}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return {**json.loads(line[len("RESULT ") :]), "process_wall_s": wall}


def run_driver(work: Path, fmt: str, tp: int, kv: str | None = None) -> dict:
    out = work / f"driver_{fmt}_tp{tp}{'_kv' + kv if kv else ''}"
    argv = [
        sys.executable,
        "-m",
        "trtbuild.quantize",
        "--model_dir",
        str(work / "model"),
        "--output_dir",
        str(out),
        "--qformat",
        fmt,
        "--tp_size",
        str(tp),
        "--calib_size",
        str(CALIB["calib_size"]),
        "--batch_size",
        str(CALIB["batch_size"]),
        "--calib_max_seq_length",
        str(CALIB["calib_max_seq_length"]),
        "--seed",
        str(CALIB["seed"]),
        "--device",
        DEVICE,
        "--dtype",
        "auto",
        *(["--kv_cache_dtype", kv] if kv else []),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}",
        "TRTBUILD_QUANT_ACCURACY_GATE": "0",
    }
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
        raise SystemExit(f"driver {fmt} tp{tp} failed with exit {proc.returncode}")
    rep = json.loads((out / "quantize_report.json").read_text())
    return {
        "argv": argv[1:],
        "process_wall_s": wall,
        "timings": rep["timings"],
        "memory": rep["memory"],
        "accuracy": rep["accuracy"],
        "quantization": rep["export"]["quantization"],
        "mapping": rep["export"]["mapping"],
        "bytes": ckpt_bytes(out),
        "versions": rep["versions"],
        "calibration": rep["calibration"],
        "quantizers": rep["quantizers"]["enabled"],
    }


def step_all(work: Path, out: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"calib": CALIB, "model": MODEL}
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        results["gpu"] = smi.stdout.strip()
    except FileNotFoundError:
        results["gpu"] = "none (no nvidia-smi)"
    print("gpu:", results["gpu"], flush=True)

    def save() -> None:
        (out / "results.json").write_text(json.dumps(results, indent=2, default=str))

    results["make"] = run_step(["make", "--work", str(work)])
    save()
    print("make:", results["make"], flush=True)
    results["warm_first"] = run_step(["warm"])
    results["warm_cached"] = run_step(["warm"])
    print("warm:", results["warm_first"], results["warm_cached"], flush=True)
    save()
    for fmt in FORMATS:
        results[f"bare_{fmt}"] = run_step(["bare", "--work", str(work), "--fmt", fmt])
        print(f"bare {fmt}:", results[f"bare_{fmt}"], flush=True)
        for tp in (1, 2):
            results[f"driver_{fmt}_tp{tp}"] = run_driver(work, fmt, tp)
            print(f"driver {fmt} tp{tp}:", json.dumps(results[f"driver_{fmt}_tp{tp}"]["timings"]), flush=True)
            save()
    save()
    table = render(results)
    (out / "table.md").write_text(table + "\n")
    print(table)


def step_accuracy(work: Path, out: Path) -> None:
    """Only the model and the driver's accuracy figures (gate measured, compared with the defaults)."""
    sys.path.insert(0, str(ROOT))
    from trtbuild.quantize.options import GATE_DEFAULTS

    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"calib": CALIB, "model": MODEL, "make": run_step(["make", "--work", str(work)])}
    print("make:", results["make"], flush=True)
    rows = [
        "| format | KV | top-1 agreement | mean KL | max KL | ref entropy "
        "| default gate (min top-1 / max KL) | passes | calibrate s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fmt, kv in (("fp8", "fp8"), ("int8_sq", None), ("int4_awq", None)):
        d = results[f"driver_{fmt}_{kv}"] = run_driver(work, fmt, 1, kv)
        a, (top1, kl) = d["accuracy"], GATE_DEFAULTS[fmt]
        ok = a["top1_agreement"] >= top1 and a["mean_kl"] <= kl
        rows.append(
            f"| {fmt} | {kv or '-'} | {a['top1_agreement']:.4f} | {a['mean_kl']:.5f} | {a['max_kl']:.4f} | "
            f"{a['ref_entropy']:.2f} | {top1} / {kl} | {'yes' if ok else 'NO'} | "
            f"{d['timings']['calibrate_s']:.2f} |"
        )
        print(rows[-1], flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "table.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


def render(r: dict) -> str:
    gib = 1024**3
    rows = [
        "| format | tp | step | load s | calibrate s | export s | in-process total s | peak GPU GiB | "
        "checkpoint GB | driver / bare |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for fmt in FORMATS:
        b = r[f"bare_{fmt}"]
        for tp in (1, 2):
            d = r[f"driver_{fmt}_tp{tp}"]
            bare_total = b["load_s"] + b["calibrate_s"] + b[f"export_tp{tp}_s"]
            t = d["timings"]
            work = t["total_s"] - t["import_s"]  # bare's figures exclude imports too
            rows.append(
                f"| {fmt} | {tp} | bare ModelOpt | {b['load_s']:.2f} | {b['calibrate_s']:.2f} | "
                f"{b[f'export_tp{tp}_s']:.2f} | {bare_total:.2f} | {b['peak_gpu_bytes'] / gib:.2f} | "
                f"{b[f'bytes_tp{tp}'] / 1e9:.3f} | |"
            )
            rows.append(
                f"| {fmt} | {tp} | trtbuild driver | {t['load_s']:.2f} | {t['calibrate_s']:.2f} | "
                f"{t['export_s']:.2f} | {work:.2f} ({work - t['gate_s']:.2f} w/o gate) | "
                f"{(d['memory']['peak_gpu_bytes'] or 0) / gib:.2f} | "
                f"{d['bytes'] / 1e9:.3f} | calib {t['calibrate_s'] / b['calibrate_s']:.2f}, "
                f"total {work / bare_total:.2f} ({(work - t['gate_s']) / bare_total:.2f} w/o gate) |"
            )
    acc = [
        "",
        "| format | tp | top-1 agreement | mean KL | ref entropy | gate s | quant_algo | group_size |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fmt in FORMATS:
        for tp in (1, 2):
            d = r[f"driver_{fmt}_tp{tp}"]
            a = d["accuracy"]
            acc.append(
                f"| {fmt} | {tp} | {a['top1_agreement']:.4f} | {a['mean_kl']:.5f} | {a['ref_entropy']:.2f} | "
                f"{d['timings']['gate_s']:.2f} | {d['quantization'].get('quant_algo')} | "
                f"{d['quantization'].get('group_size', '-')} |"
            )
    w1, w2 = r["warm_first"], r["warm_cached"]
    warm = [
        "",
        f"ModelOpt CUDA extensions: first use {w1['get_cuda_ext']['seconds']:.1f}s + "
        f"{w1['get_cuda_ext_fp8']['seconds']:.1f}s (fp8), from the TORCH_EXTENSIONS_DIR cache "
        f"{w2['get_cuda_ext']['seconds']:.2f}s + {w2['get_cuda_ext_fp8']['seconds']:.2f}s",
    ]
    return "\n".join(rows + acc + warm)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("step", choices=("all", "accuracy", "make", "warm", "bare", "multi", "group", "exportdev"))
    p.add_argument("--work", type=Path, default=Path("/tmp/quantize_gpu_work"))
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/quantize_gpu_out")))
    p.add_argument("--fmt", choices=FORMATS)
    p.add_argument("--group", help="group step: the group's name (multi.py GROUPS)")
    a = p.parse_args()
    if a.step in ("multi", "group", "exportdev"):
        import multi

        if a.step == "exportdev":
            multi.step_exportdev(a.work, a.out)
        elif a.step == "multi":
            multi.step_multi(a.work, a.out)
        else:
            print("RESULT " + json.dumps(multi.step_group(a.work, a.group), default=str), flush=True)
        return
    if a.step in ("all", "accuracy"):
        (step_all if a.step == "all" else step_accuracy)(a.work, a.out)
        return
    res = {"make": lambda: step_make(a.work), "warm": step_warm, "bare": lambda: step_bare(a.work, a.fmt)}[
        a.step
    ]()
    print("RESULT " + json.dumps(res, default=str), flush=True)


if __name__ == "__main__":
    main()

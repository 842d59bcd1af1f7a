"""The quantize driver: HF checkpoint -> ModelOpt PTQ -> accuracy gate -> TensorRT-LLM checkpoint (engine
path) or, with ``--export_format hf``, a unified Hugging Face checkpoint (PyTorch backend).

``run_quantize(options)`` does, in order:
 1. checks options, the model directory, the calibration source and the output directory, and the
    model's shapes (``shapes.check_shapes``) from config.json -- all before any weight is loaded;
 2. loads tokenizer and model (CPU: float32, the fast way to calibrate there; CUDA: the export dtype);
 3. packs calibration sequences and, when the gate is on, records the unquantized model's next-token
    log-probabilities on held-out prompts;
 4. ``mtq.quantize`` with the format's ModelOpt config (+ KV-cache entries), timed;
 5. checks that every enabled quantizer got a scale, then runs the accuracy gate;
 6. ``export_tensorrt_llm_checkpoint(..., inference_tensor_parallel=tp, inference_pipeline_parallel=pp)``
    into a staging folder, checks that its config.json keeps the source model's numerics (rope base and
    scaling, norm epsilon, heads, KV heads, vocab, hidden sizes, positions: ``numerics``) and says what was
    asked (format, KV cache, mapping, ranks), saves the tokenizer beside it,
    moves everything into the output directory and writes ``quantize_report.json`` last. With
    ``--export_format hf``: ``export_hf_checkpoint`` instead (safetensors + ``hf_quant_config.json`` + the HF
    config; not split by TP/PP), checked by ``_check_hf_export``.

Imports only the stdlib, torch, transformers, modelopt, safetensors and numpy (it runs inside the
toolchain container with trtbuild/ mounted read-only on PYTHONPATH).

Report (``quantize_report.json``, schema ``trtbuild.quantize_report/1``)::

  schema, status ("ok" | "accuracy_gate_failed"), argv, options,
  model: {dir, architecture, decoder_type, config_sha256, hidden_size, ...},
  format: {qformat, kv_cache_dtype, awq_block_size (int4_awq), export_dtype, calib_dtype, device},
  calibration: {dataset, dataset_sha256, passages, samples, batch_size, seq_len, tokens,
                unique_tokens, passes, seconds},
  quantizers: {enabled, by_kind: {weight_quantizer: {enabled, calibrated, num_bits, amax_min,
               amax_max, amax_mean, ...}, ...}},
  accuracy: {enforced, passed, prompts, positions, top1_agreement, mean_kl, max_kl, ref_entropy,
             min_top1_agreement, max_kl_divergence, failures} (null when nothing was quantized),
  export: {quantization: <config.json "quantization">, mapping: <config.json "mapping">, numerics: {the
           fields compared with the source config.json}, seconds, bytes, files: [{path, size}]},
  compat: {transformers_dtype_kwarg, quant_cfg_layout, restored: [repairs of the export]},
  shape_warnings: [...], timings: {import_s, load_s, calibrate_s, gate_s, export_s, total_s},
  memory: {device, peak_gpu_bytes (largest per-GPU peak), peak_gpu_bytes_per_gpu, gpu_name,
           placement: {device_map, max_memory, gpus, weights_bytes, reserve_bytes, cpu_offload, notes},
           devices_used}, versions: {python, torch, cuda, modelopt, transformers, ...}
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from trtbuild.quantize import calib as calib_mod
from trtbuild.quantize import compat, formats, gate, numerics, placement, shapes
from trtbuild.quantize.errors import (
    AccuracyGateFailed,
    CalibrationError,
    ExportError,
    MissingDependency,
    QuantizeInputError,
    ShapeError,
)
from trtbuild.quantize.options import QuantizeOptions, build_argv, validate_options

REPORT_NAME = "quantize_report.json"
REPORT_SCHEMA = "trtbuild.quantize_report/1"
STAGING_NAME = ".trtbuild-staging"
SUPPORTED_DTYPES = ("float16", "bfloat16")


def _default_log(msg: str) -> None:
    print(f"[trtbuild.quantize] {msg}", file=sys.stderr, flush=True)


def read_model_config(model_dir: str) -> tuple[dict, str]:
    """(config dict, sha256 of config.json); ``QuantizeInputError`` when missing or invalid."""
    path = Path(model_dir) / "config.json"
    if not Path(model_dir).is_dir():
        raise QuantizeInputError(
            f"--model_dir {model_dir}: no such directory",
            hint="point it at a Hugging Face checkpoint directory",
        )
    if not path.is_file():
        raise QuantizeInputError(
            f"--model_dir {model_dir}: no config.json in it",
            hint="point it at a Hugging Face checkpoint directory",
        )
    raw = path.read_bytes()
    try:
        cfg = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QuantizeInputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise QuantizeInputError(f"{path}: expected a JSON object")
    return cfg, hashlib.sha256(raw).hexdigest()


def export_dtype_of(options: QuantizeOptions, config: dict) -> tuple[str, list[str]]:
    """The dtype of unquantized weights in the export (ModelOpt exports float16 or bfloat16 only)."""
    return export_dtype(options.dtype, config)


def export_dtype(want: str, config: dict) -> tuple[str, list[str]]:
    """``--dtype want`` of a model with HF ``config`` -> (export dtype, notes); the verify step expects it."""
    notes = []
    if want == "auto":
        want = str(config.get("dtype") or config.get("torch_dtype") or "float16")
    if want not in SUPPORTED_DTYPES:
        notes.append(f"dtype {want} is exported as float16 (ModelOpt writes float16 or bfloat16 checkpoints)")
        want = "float16"
    return want, notes


def prepare_output_dir(out: Path) -> None:
    """Make ``out`` ready: absent or empty, or holding only a previous run of this driver (removed)."""
    if out.exists() and not out.is_dir():
        raise QuantizeInputError(f"--output_dir {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    previous = out / REPORT_NAME
    if previous.is_file():
        try:
            old = json.loads(previous.read_text(encoding="utf-8"))
            old_files = (
                [f["path"] for f in old.get("export", {}).get("files", [])]
                if old.get("schema") == REPORT_SCHEMA
                else None
            )
        except (ValueError, AttributeError, TypeError, KeyError):
            old_files = None
        if old_files is not None:
            for rel in old_files:
                p = out / rel
                if p.is_file() and p.resolve().parent == out.resolve():
                    p.unlink()
            previous.unlink()
    shutil.rmtree(out / STAGING_NAME, ignore_errors=True)
    left = sorted(p.name for p in out.iterdir())
    if left:
        raise QuantizeInputError(
            f"--output_dir {out}: not empty ({', '.join(left[:5])}{' ...' if len(left) > 5 else ''})",
            hint="give an empty or new directory; trtbuild replaces only its own earlier output",
        )


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _versions() -> dict:
    import importlib.metadata as md

    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda}
    for dist in ("nvidia-modelopt", "transformers", "safetensors", "numpy", "tokenizers"):
        try:
            out[dist.replace("nvidia-", "")] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist.replace("nvidia-", "")] = None
    return out


def _sync(torch, device: str) -> None:
    """Wait for every visible GPU (a split model runs on several; ``synchronize()`` waits for one)."""
    if device == "cuda":
        for i in range(torch.cuda.device_count()):
            torch.cuda.synchronize(i)


def _visible_gpus(torch) -> list[placement.Gpu]:
    gpus = []
    for i in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(i)
        gpus.append(placement.Gpu(i, torch.cuda.get_device_name(i), int(total), int(free)))
    return gpus


def _load_model(auto_model, torch, options: QuantizeOptions, load_kw: dict, config: dict, calib_dtype: str):
    """Load the model for calibration; on CUDA placed by ``placement.plan_placement`` (returned too)."""
    if options.device != "cuda":
        return auto_model.from_pretrained(options.model_dir, **load_kw), None
    plan = placement.plan_placement(
        _visible_gpus(torch),
        placement.checkpoint_weight_bytes(options.model_dir, calib_dtype),
        placement.activation_reserve(
            shapes.model_dims(config),
            options.batch_size,
            options.calib_max_seq_length,
            placement.DTYPE_BYTES[calib_dtype],
        ),
        max_gpu_memory_gib=options.max_gpu_memory_gib,
        cpu_offload=options.cpu_offload,
    )
    if importlib.util.find_spec("accelerate") is None:
        if isinstance(plan.device_map, dict):  # one GPU: load, then move (device_map needs accelerate)
            return auto_model.from_pretrained(options.model_dir, **load_kw).to("cuda"), plan
        raise MissingDependency(
            "splitting the model over several GPUs or offloading it to the CPU needs accelerate",
            hint="pip install accelerate (the TensorRT-LLM images have it)",
        )
    kw = {"max_memory": plan.max_memory} if plan.max_memory else {}
    model = auto_model.from_pretrained(options.model_dir, **load_kw, device_map=plan.device_map, **kw)
    return model, plan


def _input_device(model, plan) -> str:
    """Where calibration batches and gate prompts go (the input embedding's execution device)."""
    if plan is None:
        return "cpu"
    embed = model.get_input_embeddings()
    embed_name = next((n for n, m in model.named_modules() if m is embed), "")
    return placement.input_device(getattr(model, "hf_device_map", None) or {"": 0}, embed_name)


def _memory_report(torch, device: str, plan, model) -> dict:
    if device != "cuda":
        return {"device": device, "peak_gpu_bytes": None, "gpu_name": None}
    peaks = [int(torch.cuda.max_memory_allocated(i)) for i in range(torch.cuda.device_count())]
    return {
        "device": device,
        "peak_gpu_bytes": max(peaks),  # the largest of the per-GPU peaks
        "peak_gpu_bytes_per_gpu": peaks,
        "gpu_name": torch.cuda.get_device_name(0),
        "placement": plan.as_dict() if plan is not None else None,
        "devices_used": placement.devices_used(getattr(model, "hf_device_map", None)),
    }


def quantization_problems(quant: dict, options: QuantizeOptions) -> list[str]:
    """How an exported checkpoint's ``quantization`` section (TensorRT-LLM config.json or
    hf_quant_config.json) differs from the request: algorithm, KV-cache algorithm, AWQ group size."""
    problems = []
    want_algo = formats.EXPECTED_QUANT_ALGO[options.qformat]
    if quant.get("quant_algo") != want_algo:
        problems.append(f"quant_algo {quant.get('quant_algo')!r} != {want_algo!r}")
    want_kv = formats.EXPECTED_KV_ALGO[options.kv_cache_dtype]
    if quant.get("kv_cache_quant_algo") != want_kv:
        problems.append(f"kv_cache_quant_algo {quant.get('kv_cache_quant_algo')!r} != {want_kv!r}")
    if options.qformat == "int4_awq" and quant.get("group_size") != options.awq_block_size:
        problems.append(f"group_size {quant.get('group_size')!r} != {options.awq_block_size}")
    return problems


def _check_export(out: Path, options: QuantizeOptions) -> dict:
    """Read the exported config.json and check it says what was asked; return its sections."""
    cfg_path = out / "config.json"
    if not cfg_path.is_file():
        raise ExportError(f"ModelOpt wrote no config.json into {out}")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    quant, mapping = cfg.get("quantization") or {}, cfg.get("mapping") or {}
    problems = quantization_problems(quant, options)
    world = options.tp_size * options.pp_size
    if (mapping.get("tp_size"), mapping.get("pp_size"), mapping.get("world_size")) != (
        options.tp_size,
        options.pp_size,
        world,
    ):
        problems.append(f"mapping {mapping} != tp {options.tp_size} pp {options.pp_size}")
    ranks = sorted(p.name for p in out.glob("rank*.safetensors"))
    if ranks != sorted(f"rank{r}.safetensors" for r in range(world)):
        problems.append(f"rank files {ranks} != rank0..rank{world - 1}")
    if problems:
        raise ExportError(
            "the exported TensorRT-LLM checkpoint does not match the request: " + "; ".join(problems)
        )
    return {
        "quantization": quant,
        "mapping": mapping,
        "architecture": cfg.get("architecture"),
        "dtype": cfg.get("dtype"),
        "numerics": {k: cfg.get(k) for k in numerics.NUMERIC_FIELDS},
    }


def _check_numerics(staging: Path, source: dict, options: QuantizeOptions) -> list[str]:
    """Repair what the export is known to drop (``numerics.restore_rope_fields``), then refuse an export whose
    numerics differ from the source config.json; returns the repairs made."""
    cfg_path = staging / "config.json"
    if not cfg_path.is_file():
        raise ExportError(f"ModelOpt wrote no config.json into {staging}")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    restored = numerics.restore_rope_fields(cfg, source)
    if restored:
        _write_json_atomic(cfg_path, cfg)
    problems = numerics.check_numerics(cfg, source, options.qformat)
    if problems:
        raise ExportError(
            "the exported checkpoint does not keep the source model's numerics: " + "; ".join(problems),
            hint="an engine built from it would compute with other values; nothing was written. Report the "
            "ModelOpt / transformers versions of the toolchain (quantize_report.json: versions)",
        )
    return restored


HF_QUANT_CONFIG = "hf_quant_config.json"


def _check_hf_export(out: Path, options: QuantizeOptions) -> dict:
    """The unified HF checkpoint: config.json, safetensors weights and (when quantized) hf_quant_config.json
    naming the requested algorithms; return its quantization section."""
    cfg_path = out / "config.json"
    if not cfg_path.is_file():
        raise ExportError(f"ModelOpt wrote no config.json into {out}")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if not sorted(out.glob("*.safetensors")):
        raise ExportError(f"ModelOpt wrote no *.safetensors weights into {out}")
    problems = []
    quant: dict = {}
    qpath = out / HF_QUANT_CONFIG
    quantized = options.qformat != "full_prec" or options.kv_cache_dtype is not None
    if quantized and not qpath.is_file():
        problems.append(f"no {HF_QUANT_CONFIG}")
    elif qpath.is_file():
        quant = json.loads(qpath.read_text(encoding="utf-8")).get("quantization") or {}
        problems += quantization_problems(quant, options)
    if problems:
        raise ExportError(
            "the exported Hugging Face checkpoint does not match the request: " + "; ".join(problems)
        )
    return {
        "format": "hf",
        "quantization": quant,
        "architecture": (cfg.get("architectures") or [None])[0],
        "dtype": cfg.get("dtype") or cfg.get("torch_dtype"),
    }


def run_quantize(
    options: QuantizeOptions,
    *,
    post_calibration_hook: Callable | None = None,
    post_export_hook: Callable[[Path], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Quantize ``options.model_dir`` into a TensorRT-LLM checkpoint in ``options.output_dir``.

    Returns the report (also written as ``quantize_report.json``). Raises ``QuantizeInputError`` /
    ``ShapeError`` (exit 2) before any weight is loaded, ``CalibrationError`` / ``ExportError`` (exit 1),
    ``AccuracyGateFailed`` (exit 1; the report is written, no checkpoint). ``post_calibration_hook(model)``
    runs right after calibration (tests use it to corrupt scales and prove the gate catches it);
    ``post_export_hook(staging_dir)`` right after ModelOpt's export (tests change the exported config.json to
    prove the numerics check catches it).
    """
    log = log or _default_log
    t_start = time.perf_counter()
    problems = validate_options(options)
    if problems:
        raise QuantizeInputError("invalid options:\n  " + "\n  ".join(problems))
    config, config_sha = read_model_config(options.model_dir)
    shape_problems = shapes.check_shapes(
        config, options.qformat, options.tp_size, options.pp_size, options.awq_block_size
    )
    errors = shapes.errors_only(shape_problems)
    if errors:
        raise ShapeError(errors)
    passages = calib_mod.read_passages(options.calib_dataset)
    out = Path(options.output_dir)
    prepare_output_dir(out)
    export_dtype, notes = export_dtype_of(options, config)
    for note in notes:
        log(note)

    t_import = time.perf_counter()
    try:
        import modelopt.torch.quantization as mtq
        import torch
        import transformers
        from modelopt.torch.export import export_hf_checkpoint, export_tensorrt_llm_checkpoint
        from modelopt.torch.export.model_utils import get_model_type
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependency(
            f"quantization needs torch, transformers and NVIDIA ModelOpt: {exc}",
            hint="pip install 'trtbuild[quantize]' (or run in the toolchain image)",
        ) from None
    import_s = time.perf_counter() - t_import
    if options.device == "cuda" and not torch.cuda.is_available():
        raise QuantizeInputError("--device cuda: no CUDA device is visible here", hint="use --device cpu")

    torch.manual_seed(options.seed)
    device = options.device
    calib_dtype = "float32" if device == "cpu" else export_dtype
    if device == "cuda":
        for i in range(torch.cuda.device_count()):
            torch.cuda.reset_peak_memory_stats(i)

    # --- load
    t0 = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            options.model_dir, model_max_length=options.tokenizer_max_seq_length
        )
    except (OSError, ValueError) as exc:
        raise QuantizeInputError(
            f"--model_dir {options.model_dir}: cannot load its tokenizer ({exc})",
            hint="the checkpoint directory must include the tokenizer files",
        ) from None
    dtype_kw = compat.transformers_dtype_kwarg(transformers.__version__)
    load_kw = {dtype_kw: getattr(torch, calib_dtype)}
    # CUDA: one GPU, or split over all visible GPUs (+ CPU offload when allowed); see placement.py
    model, plan = _load_model(AutoModelForCausalLM, torch, options, load_kw, config, calib_dtype)
    model = model.eval()
    decoder_type = get_model_type(model)
    if decoder_type is None and options.export_format != "hf":
        raise QuantizeInputError(
            f"--model_dir {options.model_dir}: {type(model).__name__} is not a model "
            "ModelOpt can export to a TensorRT-LLM checkpoint",
            hint="use a Llama-architecture checkpoint",
        )
    in_device = _input_device(model, plan)
    load_s = time.perf_counter() - t0
    log(f"loaded {type(model).__name__} ({decoder_type}) in {calib_dtype} on {device} in {load_s:.1f}s")
    if plan is not None:
        used = placement.devices_used(getattr(model, "hf_device_map", None))
        log(f"placement: {used or {'cuda:0': 1}}; inputs on {in_device}; " + "; ".join(plan.notes))

    # --- calibration data and gate reference
    batches = calib_mod.pack_calibration(
        tokenizer,
        passages.calib,
        options.calib_size,
        options.batch_size,
        options.calib_max_seq_length,
        options.seed,
    )
    qcfg = formats.quant_config(mtq, options.qformat, options.kv_cache_dtype, options.awq_block_size)
    min_top1, max_kl = options.thresholds()
    gate_s = 0.0
    prompts: list = []
    reference: list = []
    if qcfg is not None:
        t0 = time.perf_counter()
        held = passages.held_out or calib_mod.builtin_held_out()
        prompts = calib_mod.held_out_prompts(tokenizer, held, options.gate_prompts, options.gate_tokens)
        reference = gate.reference_logprobs(model, prompts, in_device)
        gate_s += time.perf_counter() - t0

    # --- calibrate
    def forward_loop(m) -> None:
        with torch.no_grad():
            for b in batches.batches:
                m(input_ids=b.to(in_device), use_cache=False)

    calibrate_s = 0.0
    qstats: dict = {"enabled": 0, "by_kind": {}, "uncalibrated": []}
    if qcfg is not None:
        log(
            f"calibrating {options.qformat}"
            + (f" + {options.kv_cache_dtype} KV cache" if options.kv_cache_dtype else "")
            + f" on {batches.samples} x {batches.seq_len} tokens"
        )
        _sync(torch, device)
        t0 = time.perf_counter()
        try:
            model = mtq.quantize(model, qcfg, forward_loop)
        except Exception as exc:  # ModelOpt raises plain exceptions; keep the message, type it
            raise CalibrationError(f"ModelOpt calibration failed: {type(exc).__name__}: {exc}") from exc
        _sync(torch, device)
        calibrate_s = time.perf_counter() - t0
        log(f"calibrated in {calibrate_s:.2f}s")
        if post_calibration_hook is not None:
            post_calibration_hook(model)
        from trtbuild.quantize.stats import quantizer_stats

        qstats = quantizer_stats(model)
        if qstats["enabled"] == 0:
            raise CalibrationError("no quantizer is enabled after mtq.quantize; ModelOpt matched no layer")
        if qstats["uncalibrated"]:
            names = ", ".join(qstats["uncalibrated"][:5])
            raise CalibrationError(
                f"{len(qstats['uncalibrated'])} enabled quantizers have no valid scale after "
                f"calibration (e.g. {names})",
                hint="check the calibration data reaches every layer; raise --calib_size",
            )

    versions = _versions()
    report: dict = {
        "schema": REPORT_SCHEMA,
        "status": "ok",
        "argv": build_argv(options),
        "options": options.as_dict(),
        "model": {
            "dir": str(Path(options.model_dir).resolve()),
            "architecture": type(model).__name__,
            "decoder_type": decoder_type,
            "config_sha256": config_sha,
            **shapes.model_dims(config),
        },
        "format": {
            "qformat": options.qformat,
            "kv_cache_dtype": options.kv_cache_dtype,
            "awq_block_size": options.awq_block_size if options.qformat == "int4_awq" else None,
            "export_dtype": export_dtype,
            "calib_dtype": calib_dtype,
            "device": device,
        },
        "calibration": {
            "dataset": passages.source,
            "dataset_sha256": passages.sha256,
            "passages": len(passages.calib),
            "samples": batches.samples,
            "batch_size": options.batch_size,
            "seq_len": batches.seq_len,
            "tokens": batches.tokens,
            "unique_tokens": batches.unique_tokens,
            "passes": batches.passes,
            "seconds": round(calibrate_s, 4) if qcfg is not None else 0.0,
            "skipped": qcfg is None,
        },
        "quantizers": {"enabled": qstats["enabled"], "by_kind": qstats["by_kind"]},
        "accuracy": None,
        "shape_warnings": [p.as_dict() for p in shape_problems if p.severity != "error"],
        "notes": notes,
        "versions": versions,
    }

    # --- accuracy gate (its reference was taken before calibration whenever something is quantized)
    if reference is not None:
        t0 = time.perf_counter()
        figures = gate.compare(model, prompts, reference, in_device)
        gate_s += time.perf_counter() - t0
        failures = gate.verdict(figures, min_top1, max_kl)
        report["accuracy"] = {
            **figures,
            "min_top1_agreement": min_top1,
            "max_kl_divergence": max_kl,
            "enforced": options.accuracy_gate,
            "passed": not failures,
            "failures": failures,
        }
        log(
            f"accuracy gate: top-1 agreement {figures['top1_agreement']:.4f} (min {min_top1}), "
            f"mean KL {figures['mean_kl']:.5f} (max {max_kl}) over {figures['positions']} positions"
            + ("" if not failures else f" -> FAILED{'' if options.accuracy_gate else ' (not enforced)'}")
        )
        if failures and options.accuracy_gate:
            report["status"] = "accuracy_gate_failed"
            report["timings"] = _timings(
                t_start, import_s=import_s, load_s=load_s, calibrate_s=calibrate_s, gate_s=gate_s
            )
            report["export"] = {"files": []}
            _write_json_atomic(out / REPORT_NAME, report)
            raise AccuracyGateFailed(
                f"accuracy gate failed for {options.qformat}: " + "; ".join(failures),
                report=report,
                hint="check the calibration data and format; relax "
                "quantization.accuracy.min_top1_agreement / max_kl_divergence only if the figures are "
                "acceptable, or disable the gate",
            )

    # --- export
    staging = out / STAGING_NAME
    hf = options.export_format == "hf"
    log(
        f"exporting unified Hugging Face checkpoint ({export_dtype})"
        if hf
        else f"exporting TensorRT-LLM checkpoint ({export_dtype}, tp {options.tp_size}, pp {options.pp_size})"
    )
    t0 = time.perf_counter()
    if set((getattr(model, "hf_device_map", None) or {}).values()) & {"cpu", "disk"}:
        moved = placement.materialize_offloaded(model)  # the export reads weights, not meta tensors
        log(f"{len(moved)} offloaded modules given their CPU weights for the export")
    try:
        with torch.no_grad():
            if hf:
                if qcfg is None:  # nothing quantized: the model itself, in the export dtype
                    model.to(getattr(torch, export_dtype)).save_pretrained(str(staging))
                else:
                    export_hf_checkpoint(model, dtype=getattr(torch, export_dtype), export_dir=staging)
            else:
                export_tensorrt_llm_checkpoint(
                    model,
                    decoder_type=decoder_type,
                    dtype=getattr(torch, export_dtype),
                    export_dir=staging,
                    inference_tensor_parallel=options.tp_size,
                    inference_pipeline_parallel=options.pp_size,
                )
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(f"ModelOpt export failed: {type(exc).__name__}: {exc}") from exc
    export_s = time.perf_counter() - t0
    if post_export_hook is not None:
        post_export_hook(staging)
    restored: list[str] = []
    try:
        if hf:
            exported = _check_hf_export(staging, options)
        else:
            restored = _check_numerics(staging, config, options)
            exported = _check_export(staging, options)
    except ExportError:
        shutil.rmtree(staging, ignore_errors=True)  # nothing half-made is left for a later step to pick up
        raise
    for note in restored:
        log(note)
    report["compat"] = {
        "transformers_dtype_kwarg": dtype_kw,
        "quant_cfg_layout": compat.quant_cfg_layout(qcfg["quant_cfg"]) if qcfg is not None else None,
        "restored": restored,
    }
    tokenizer.save_pretrained(str(staging))
    files = []
    for p in sorted(staging.iterdir()):
        if p.is_file():
            files.append({"path": p.name, "size": p.stat().st_size})
            os.replace(p, out / p.name)
    shutil.rmtree(staging, ignore_errors=True)
    report["export"] = {
        **exported,
        "seconds": round(export_s, 4),
        "files": files,
        "bytes": sum(f["size"] for f in files),
    }
    report["timings"] = _timings(
        t_start,
        import_s=import_s,
        load_s=load_s,
        calibrate_s=calibrate_s,
        gate_s=gate_s,
        export_s=export_s,
    )
    report["memory"] = _memory_report(torch, device, plan, model)
    # a library that caches an exception raised by an import made in here keeps this frame alive, and
    # with it the model: drop it so a process that quantizes again gets the memory back
    del model
    _write_json_atomic(out / REPORT_NAME, report)
    log(
        f"wrote {len(files)} files ({report['export']['bytes'] / 1e6:.1f} MB) to {out} in "
        f"{report['timings']['total_s']:.1f}s"
    )
    return report


def _timings(t_start: float, **stages: float) -> dict[str, float]:
    """The report's ``timings``: each stage's seconds and the total since ``t_start``, to 0.1 ms."""
    return {**{k: round(v, 4) for k, v in stages.items()}, "total_s": round(time.perf_counter() - t_start, 4)}

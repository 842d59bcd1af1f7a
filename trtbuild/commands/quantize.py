"""``trtbuild quantize MODEL_DIR OUT_DIR --format ...``: a quantized TensorRT-LLM checkpoint, nothing else.

Runs the ModelOpt driver in-process on this host (torch, transformers and ModelOpt must be installed:
``pip install 'trtbuild[quantize]'``). Exit codes: 0 ok, 1 failure (calibration, export, accuracy gate),
2 invalid input (flags, model directory, shapes, calibration file).
"""

from __future__ import annotations

import contextlib
import sys

import click

from trtbuild.commands._common import print_json
from trtbuild.quantize.options import GATE_DEFAULTS, QuantizeOptions


def _device(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


@click.command(
    "quantize",
    epilog="Accuracy gate defaults (min top-1 agreement / max mean KL): "
    + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in GATE_DEFAULTS.items() if k != "full_prec")
    + ". Exit codes: 0 ok, 1 failure, 2 invalid input.",
)
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["fp8", "int8_sq", "int4_awq"]),
    help="Weight/activation format.",
)
@click.option(
    "--kv-cache", type=click.Choice(["fp8", "int8"]), default=None, help="Also quantize the KV cache."
)
@click.option("--tp", type=click.IntRange(min=1), default=1, show_default=True, help="Tensor parallel ranks.")
@click.option(
    "--pp", type=click.IntRange(min=1), default=1, show_default=True, help="Pipeline parallel ranks."
)
@click.option(
    "--calib-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Local .jsonl/.json/.txt calibration text (default: the built-in set).",
)
@click.option(
    "--calib-samples",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Calibration sequences.",
)
@click.option(
    "--calib-seq-len",
    type=click.IntRange(min=2),
    default=512,
    show_default=True,
    help="Tokens per calibration sequence.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--awq-block-size",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="INT4 AWQ group size.",
)
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float16", "bfloat16"]),
    default="auto",
    show_default=True,
    help="Dtype of unquantized weights in the checkpoint.",
)
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True)
@click.option("--seed", type=int, default=1234, show_default=True)
@click.option("--no-accuracy-gate", is_flag=True, help="Report the accuracy figures but never fail on them.")
@click.option(
    "--min-top1",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Minimum top-1 agreement with the unquantized model (default per format).",
)
@click.option(
    "--max-kl",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Maximum mean KL divergence in nats (default per format).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the quantize report as JSON.")
def command(
    model_dir: str,
    out_dir: str,
    fmt: str,
    kv_cache: str | None,
    tp: int,
    pp: int,
    calib_file: str | None,
    calib_samples: int,
    calib_seq_len: int,
    batch_size: int,
    awq_block_size: int,
    dtype: str,
    device: str,
    seed: int,
    no_accuracy_gate: bool,
    min_top1: float | None,
    max_kl: float | None,
    as_json: bool,
) -> None:
    """Quantize a Hugging Face Llama checkpoint with NVIDIA ModelOpt into a TensorRT-LLM checkpoint."""
    from trtbuild.quantize.driver import run_quantize

    options = QuantizeOptions(
        model_dir=model_dir,
        output_dir=out_dir,
        qformat=fmt,
        kv_cache_dtype=kv_cache,
        tp_size=tp,
        pp_size=pp,
        calib_dataset=calib_file or "builtin",
        calib_size=calib_samples,
        batch_size=batch_size,
        calib_max_seq_length=calib_seq_len,
        awq_block_size=awq_block_size,
        dtype=dtype,
        device=_device(device),
        seed=seed,
        accuracy_gate=not no_accuracy_gate,
        min_top1=min_top1,
        max_kl=max_kl,
    )
    with contextlib.redirect_stdout(sys.stderr):  # ModelOpt prints progress; stdout is for the result
        report = run_quantize(options, log=lambda msg: click.echo(msg, err=True))
    if as_json:
        print_json(report)
        return
    acc, exp = report["accuracy"], report["export"]
    click.echo(
        f"{out_dir}: {exp['quantization'].get('quant_algo')} "
        f"(KV {exp['quantization'].get('kv_cache_quant_algo')}), tp {tp} pp {pp}, "
        f"{len(exp['files'])} files, {exp['bytes'] / 1e6:.1f} MB"
    )
    click.echo(
        f"calibration: {report['calibration']['samples']} x {report['calibration']['seq_len']} tokens "
        f"in {report['calibration']['seconds']:.2f}s"
    )
    if acc:
        click.echo(
            f"accuracy: top-1 agreement {acc['top1_agreement']:.4f} (min {acc['min_top1_agreement']}), "
            f"mean KL {acc['mean_kl']:.5f} (max {acc['max_kl_divergence']})"
            + ("" if acc["passed"] else " -- below thresholds, gate not enforced")
        )

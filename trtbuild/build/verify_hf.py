"""The verify step of the PyTorch-backend path: the unified HF checkpoint agrees with the recipe.

Checks, before anything is published: ``config.json`` names an architecture; every ``*.safetensors`` file has
a readable header whose tensors lie inside the file (and a sharded checkpoint's index names only shards that
exist); tokenizer files are present (trtllm-serve loads the tokenizer from the checkpoint directory); and
``hf_quant_config.json`` carries the algorithms the recipe asked for (absent when nothing was quantized).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from trtbuild.build.verify import VerifyFailed, VerifyReport

HF_QUANT_CONFIG = "hf_quant_config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tiktoken.model", "vocab.json")
MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


def _safetensors_problem(path: Path) -> str | None:
    """None when the header parses and every tensor's bytes lie within the file."""
    size = path.stat().st_size
    try:
        with path.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > MAX_HEADER or 8 + n > size:
                return f"header length {n} does not fit the file ({size} bytes)"
            header = json.loads(fh.read(n))
    except (OSError, struct.error, ValueError) as exc:
        return f"unreadable header ({exc})"
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        return f"tensor data ends at {8 + n + end} beyond the file size {size}"
    return None


def verify_hf_checkpoint(ckpt_dir: Path, expect: dict) -> VerifyReport:
    """Compare ``ckpt_dir`` with ``expect`` (the plan's verify params); raise VerifyFailed on a mismatch."""
    report = VerifyReport()
    try:
        config = json.loads((ckpt_dir / "config.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise VerifyFailed(
            f"{ckpt_dir}/config.json: missing or not JSON ({exc})",
            hint="look at the quantize log: the export did not finish",
        ) from None
    report.add("config.json architectures", True, bool(config.get("architectures")))
    shards = sorted(p.name for p in ckpt_dir.glob("*.safetensors"))
    report.add("safetensors files", True, bool(shards))
    bad = {name: problem for name in shards if (problem := _safetensors_problem(ckpt_dir / name))}
    report.add("safetensors headers", {}, bad)
    index = ckpt_dir / "model.safetensors.index.json"
    if index.is_file():
        named = set(json.loads(index.read_text("utf-8")).get("weight_map", {}).values())
        report.add("index shards present", sorted(named), sorted(named & set(shards)))
    report.add("tokenizer files", True, any((ckpt_dir / name).is_file() for name in TOKENIZER_FILES))
    qpath = ckpt_dir / HF_QUANT_CONFIG
    if expect["quantized"]:
        quant = json.loads(qpath.read_text("utf-8")).get("quantization", {}) if qpath.is_file() else {}
        report.add(HF_QUANT_CONFIG, True, qpath.is_file())
        report.add("quantization.quant_algo", expect["quant_algo"], quant.get("quant_algo"))
        report.add(
            "quantization.kv_cache_quant_algo",
            expect["kv_cache_quant_algo"],
            quant.get("kv_cache_quant_algo"),
        )
        if expect.get("group_size") is not None:
            report.add("quantization.group_size", expect["group_size"], quant.get("group_size"))
    else:
        report.add(f"no {HF_QUANT_CONFIG} (nothing quantized)", False, qpath.is_file())
    report.raise_if_failed(
        ckpt_dir,
        "checkpoint",
        "the checkpoint was not published; check the toolchain pin and the quantize log",
    )
    return report

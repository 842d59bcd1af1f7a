"""Statistics of a model's ModelOpt quantizers after calibration: evidence that calibration happened.

For each quantizer kind (weight, input, k_bmm, v_bmm, output): how many are enabled, how many carry a
calibrated ``amax`` (present, finite, > 0), the range and mean of their amax values, and the range of
the smoothing / AWQ ``pre_quant_scale`` factors where present.
"""

from __future__ import annotations

import math

KINDS = ("weight_quantizer", "input_quantizer", "k_bmm_quantizer", "v_bmm_quantizer", "output_quantizer")


def _kind(name: str) -> str:
    leaf = name.rsplit(".", 1)[-1]
    return leaf if leaf in KINDS else "other"


def quantizer_stats(model) -> dict:
    """Per-kind quantizer statistics and an ``uncalibrated`` list of enabled quantizers lacking amax."""
    import torch
    from modelopt.torch.quantization.nn import TensorQuantizer

    kinds: dict[str, dict] = {}
    uncalibrated: list[str] = []
    for name, mod in model.named_modules():
        if not isinstance(mod, TensorQuantizer) or not mod.is_enabled:
            continue
        k = kinds.setdefault(
            _kind(name),
            {
                "enabled": 0,
                "calibrated": 0,
                "amax_min": math.inf,
                "amax_max": -math.inf,
                "amax_sum": 0.0,
                "amax_count": 0,
                "num_bits": None,
                "block_sizes": None,
                "pre_quant_scale": 0,
                "pqs_min": math.inf,
                "pqs_max": -math.inf,
            },
        )
        k["enabled"] += 1
        nb = mod.num_bits
        k["num_bits"] = list(nb) if isinstance(nb, tuple) else nb
        if getattr(mod, "block_sizes", None):
            k["block_sizes"] = {str(a): b for a, b in mod.block_sizes.items()}
        amax = getattr(mod, "amax", None)
        if amax is not None:
            a = amax.detach().float()
            ok = bool(torch.isfinite(a).all()) and bool((a > 0).all())
            if ok:
                k["calibrated"] += 1
            k["amax_min"] = min(k["amax_min"], float(a.min()))
            k["amax_max"] = max(k["amax_max"], float(a.max()))
            k["amax_sum"] += float(a.sum())
            k["amax_count"] += a.numel()
            if not ok:
                uncalibrated.append(name)
        elif not (mod.num_bits == 4 and getattr(mod, "block_sizes", None)):
            # INT4 block weight quantizers keep per-block scales only once exported; every other
            # enabled quantizer must hold an amax after calibration
            uncalibrated.append(name)
        pqs = getattr(mod, "pre_quant_scale", None)
        if pqs is not None:
            p = pqs.detach().float()
            k["pre_quant_scale"] += 1
            k["pqs_min"] = min(k["pqs_min"], float(p.min()))
            k["pqs_max"] = max(k["pqs_max"], float(p.max()))
    out = {}
    for kind, k in sorted(kinds.items()):
        row = {"enabled": k["enabled"], "calibrated": k["calibrated"], "num_bits": k["num_bits"]}
        if k["block_sizes"]:
            row["block_sizes"] = k["block_sizes"]
        if k["amax_count"]:
            row.update(
                amax_min=k["amax_min"],
                amax_max=k["amax_max"],
                amax_mean=k["amax_sum"] / k["amax_count"],
                amax_values=k["amax_count"],
            )
        if k["pre_quant_scale"]:
            row.update(
                pre_quant_scale=k["pre_quant_scale"],
                pre_quant_scale_min=k["pqs_min"],
                pre_quant_scale_max=k["pqs_max"],
            )
        out[kind] = row
    return {"by_kind": out, "enabled": sum(r["enabled"] for r in out.values()), "uncalibrated": uncalibrated}

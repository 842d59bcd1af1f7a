"""ModelOpt quantization configs for trtbuild's formats, and what the export must say about them.

Works with both shapes of ModelOpt's ``quant_cfg`` (``compat.quant_cfg_layout``): a list of
``{"quantizer_name", "cfg"|"enable"}`` entries (0.4x) and the ``{pattern: attributes}`` dict of 0.31-0.37.
"""

from __future__ import annotations

import copy
from typing import Any

from trtbuild.quantize.compat import quant_cfg_layout

BASE_CONFIGS = {"fp8": "FP8_DEFAULT_CFG", "int8_sq": "INT8_SMOOTHQUANT_CFG", "int4_awq": "INT4_AWQ_CFG"}

# what ModelOpt 0.47 writes into the exported config.json's "quantization" section
EXPECTED_QUANT_ALGO = {
    "fp8": "FP8",
    "int8_sq": "W8A8_SQ_PER_CHANNEL",
    "int4_awq": "W4A16_AWQ",
    "full_prec": None,
}
EXPECTED_KV_ALGO = {None: None, "fp8": "FP8", "int8": "INT8"}


def _kv_entries(mtq, kv_cache_dtype: str, list_form: bool):
    """KV-cache quantizer entries: ModelOpt's own FP8_KV_CFG, with 8-bit integers for ``int8``."""
    fp8_kv = copy.deepcopy(mtq.FP8_KV_CFG["quant_cfg"])
    num_bits = (4, 3) if kv_cache_dtype == "fp8" else 8
    if quant_cfg_layout(fp8_kv) == "list":
        entries = fp8_kv
        for e in entries:
            e.setdefault("cfg", {})["num_bits"] = num_bits
            e["cfg"].setdefault("axis", None)
    else:
        entries = [
            {
                "quantizer_name": k,
                "cfg": {kk: vv for kk, vv in v.items() if kk != "enable"},
                **({"enable": v["enable"]} if "enable" in v else {}),
            }
            for k, v in fp8_kv.items()
        ]
        for e in entries:
            e["cfg"]["num_bits"] = num_bits
    if list_form:
        return entries
    return {
        e["quantizer_name"]: {**e["cfg"], **({"enable": e["enable"]} if "enable" in e else {})}
        for e in entries
    }


def quant_config(mtq, qformat: str, kv_cache_dtype: str | None, awq_block_size: int) -> dict | None:
    """The ``mtq.quantize`` config for ``qformat`` + KV setting; ``None`` when nothing is quantized."""
    cfg: dict[str, Any]  # ModelOpt's config: "quant_cfg" is a list (0.4x) or a dict (0.31-0.37)
    if qformat == "full_prec":
        if kv_cache_dtype is None:
            return None
        base = copy.deepcopy(mtq.FP8_DEFAULT_CFG)
        list_form = quant_cfg_layout(base["quant_cfg"]) == "list"
        cfg = {
            "quant_cfg": [{"quantizer_name": "*", "enable": False}]
            if list_form
            else {"*": {"enable": False}},
            "algorithm": "max",
        }
    else:
        cfg = copy.deepcopy(getattr(mtq, BASE_CONFIGS[qformat]))
        list_form = quant_cfg_layout(cfg["quant_cfg"]) == "list"
    if qformat == "int4_awq":
        _set_awq_block_size(cfg["quant_cfg"], awq_block_size)
    if kv_cache_dtype is not None:
        kv = _kv_entries(mtq, kv_cache_dtype, list_form)
        if list_form:
            cfg["quant_cfg"].extend(kv)
        else:
            cfg["quant_cfg"].update(kv)
    return cfg


def _set_awq_block_size(quant_cfg, block: int) -> None:
    found = False
    items = (
        [e.get("cfg") for e in quant_cfg if e.get("quantizer_name") == "*weight_quantizer"]
        if quant_cfg_layout(quant_cfg) == "list"
        else [quant_cfg.get("*weight_quantizer")]
    )
    for attrs in items:
        if isinstance(attrs, dict) and isinstance(attrs.get("block_sizes"), dict):
            attrs["block_sizes"][-1] = block
            found = True
    if not found:  # pragma: no cover - guards a ModelOpt config layout change
        raise RuntimeError("ModelOpt's INT4_AWQ_CFG has no '*weight_quantizer' block_sizes to set")

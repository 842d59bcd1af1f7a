"""The exported checkpoint keeps every number that changes the model's arithmetic.

ModelOpt's TensorRT-LLM export rebuilds config.json from the loaded model rather than copying the source
config, and what it finds depends on the ModelOpt and transformers versions: with transformers 5 (which moved
``rope_theta`` and the rope scaling into ``rope_parameters``) ModelOpt 0.47 writes neither ``rotary_base``
nor ``rotary_scaling``, so a Llama 3 checkpoint would lose its rope base of 500000 and its llama3 scaling,
and an engine built from it would silently use the defaults. This module compares the export with the
source model's config.json field by field (``check_numerics``) and has the one explicit repair the driver
makes (``restore_rope_fields``). Stdlib only.
"""

from __future__ import annotations

import math
from typing import Any

DEFAULT_ROPE_THETA = 10000.0  # transformers' LlamaConfig default when a config.json names none
AWQ_VOCAB_MULTIPLE = 64  # ModelOpt pads vocab and lm_head to a multiple of 64 for AWQ exports
# exported (TensorRT-LLM checkpoint) field -> source (Hugging Face config.json) field
INT_FIELDS = {
    "num_attention_heads": "num_attention_heads",
    "num_key_value_heads": "num_key_value_heads",
    "hidden_size": "hidden_size",
    "intermediate_size": "intermediate_size",
    "num_hidden_layers": "num_hidden_layers",
    "vocab_size": "vocab_size",
    "max_position_embeddings": "max_position_embeddings",
}

NUMERIC_FIELDS = (
    *INT_FIELDS,
    "norm_epsilon",
    "rotary_base",
    "rotary_scaling",
)  # what check_numerics compares


def rope_theta(hf: dict[str, Any]) -> float:
    """The rope base of a source config: top-level (transformers 4) or in rope_parameters (transformers 5)."""
    raw = hf.get("rope_parameters")
    params: dict[str, Any] = raw if isinstance(raw, dict) else {}
    value = hf.get("rope_theta", params.get("rope_theta"))
    return float(value) if value is not None else DEFAULT_ROPE_THETA


def rope_scaling(hf: dict[str, Any]) -> dict[str, Any] | None:
    """The rope scaling of a source config (None: plain rope), in the transformers 4 ``rope_scaling`` form."""
    if isinstance(hf.get("rope_scaling"), dict):
        scaling = dict(hf["rope_scaling"])
    elif isinstance(hf.get("rope_parameters"), dict):
        scaling = {k: v for k, v in hf["rope_parameters"].items() if k != "rope_theta"}
    else:
        return None
    kind = scaling.get("rope_type", scaling.get("type"))
    return None if kind in (None, "default") and "factor" not in scaling else scaling


def uses_rope_parameters(hf: dict[str, Any]) -> bool:
    """The transformers >= 5 layout: rope settings only inside ``rope_parameters``."""
    return isinstance(hf.get("rope_parameters"), dict) and "rope_theta" not in hf


def restore_rope_fields(exported: dict[str, Any], hf: dict[str, Any]) -> list[str]:
    """Write the rope fields ModelOpt's export drops for a transformers-5 source config; return notes.

    Only for a source in the ``rope_parameters`` layout and only for fields the export left out: a value
    the export did write is never replaced (``check_numerics`` then judges it).
    """
    if not uses_rope_parameters(hf):
        return []
    notes = []
    if exported.get("rotary_base") is None:
        exported["rotary_base"] = rope_theta(hf)
        notes.append(
            f"rotary_base {exported['rotary_base']} restored from rope_parameters.rope_theta (the export "
            "read no rope_theta from a transformers 5 config)"
        )
    scaling = rope_scaling(hf)
    if scaling is not None and exported.get("rotary_scaling") is None:
        exported["rotary_scaling"] = scaling
        notes.append(f"rotary_scaling {scaling} restored from rope_parameters (dropped by the export)")
    return notes


def _same_number(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=0.0)
    except (TypeError, ValueError):
        return False


def _same_scaling(found: Any, want: dict[str, Any] | None) -> bool:
    if want is None:
        return found is None or (
            isinstance(found, dict) and found.get("rope_type", found.get("type")) == "default"
        )
    if not isinstance(found, dict):
        return False
    if found.get("rope_type", found.get("type")) != want.get("rope_type", want.get("type")):
        return False
    keys = {k for k in (*want, *found) if k not in ("rope_type", "type")}
    for key in keys:
        a, b = found.get(key), want.get(key)
        if isinstance(a, (int, float)) or isinstance(b, (int, float)):
            if not _same_number(a, b):
                return False
        elif a != b:
            return False
    return True


def check_numerics(exported: dict[str, Any], hf: dict[str, Any], qformat: str) -> list[str]:
    """Every numerics field of the export that is missing or differs from the source config, named."""
    problems = []
    for out_field, src_field in INT_FIELDS.items():
        want = hf.get(src_field)
        if want is None and src_field == "num_key_value_heads":
            want = hf.get("num_attention_heads")
        if want is None:
            continue  # the source does not say; nothing to compare
        found = exported.get(out_field)
        if found == want:
            continue
        padded = math.ceil(want / AWQ_VOCAB_MULTIPLE) * AWQ_VOCAB_MULTIPLE
        if out_field == "vocab_size" and qformat == "int4_awq" and found == padded:
            continue  # ModelOpt pads vocab and lm_head with zero rows for AWQ; TensorRT-LLM expects it
        problems.append(_describe(out_field, src_field, want, found))
    eps_src = "rms_norm_eps" if "rms_norm_eps" in hf else "layer_norm_eps"
    if eps_src in hf and not _same_number(exported.get("norm_epsilon"), hf[eps_src]):
        problems.append(_describe("norm_epsilon", eps_src, hf[eps_src], exported.get("norm_epsilon")))
    base = rope_theta(hf)
    if not _same_number(exported.get("rotary_base"), base):
        src = "rope_parameters.rope_theta" if uses_rope_parameters(hf) else "rope_theta"
        problems.append(_describe("rotary_base", src, base, exported.get("rotary_base")))
    scaling = rope_scaling(hf)
    if not _same_scaling(exported.get("rotary_scaling"), scaling):
        src = "rope_parameters" if uses_rope_parameters(hf) else "rope_scaling"
        problems.append(_describe("rotary_scaling", src, scaling, exported.get("rotary_scaling")))
    return problems


def _describe(out_field: str, src_field: str, want: Any, found: Any) -> str:
    if found is None:
        return f"{out_field} is missing (the source config.json has {src_field} = {want!r})"
    return f"{out_field} = {found!r} but the source config.json has {src_field} = {want!r}"

"""The quantize driver's version-specific paths, each one named here with the versions it applies to.

The driver runs inside the pinned container against that container's ModelOpt and transformers
(0.31 + 4.51 for 0.21.0, 0.33 + 4.53.1 for 1.0.0, 0.37 + 4.56.0 for 1.1.0, 0.47 + transformers 5 on a fresh
host install). tests/quantize/test_modelopt_versions.py runs the driver against each of those pairs.
Stdlib only.
"""

from __future__ import annotations

import re
from typing import Any

# transformers 4.56 renamed from_pretrained's ``torch_dtype`` to ``dtype`` (the old name is deprecated).
DTYPE_KWARG_SINCE = (4, 56)


def version_tuple(version: str) -> tuple[int, ...]:
    """``"4.56.0.dev0"`` -> (4, 56, 0): the leading numeric parts."""
    parts = []
    for piece in version.split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
    return tuple(parts)


def transformers_dtype_kwarg(transformers_version: str) -> str:
    """The dtype keyword of ``from_pretrained``: ``dtype`` from transformers 4.56, ``torch_dtype`` before."""
    return "dtype" if version_tuple(transformers_version)[:2] >= DTYPE_KWARG_SINCE else "torch_dtype"


def quant_cfg_layout(quant_cfg: Any) -> str:
    """``"list"``: ModelOpt 0.4x's ``[{"quantizer_name", "cfg"|"enable"}]``; ``"dict"``: the
    ``{pattern: attrs}`` of ModelOpt 0.31-0.37."""
    if isinstance(quant_cfg, list):
        return "list"
    if isinstance(quant_cfg, dict):
        return "dict"
    raise TypeError(f"unknown ModelOpt quant_cfg layout: {type(quant_cfg).__name__}")

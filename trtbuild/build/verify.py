"""The verify step: the engine directory agrees with the recipe before anything is published.

Checks the layout (config.json + one ``rank{N}.engine`` per rank, nothing missing or extra) and that the
engine's config.json carries the toolchain's version, the recipe's mapping, quantization and build limits.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from trtbuild.errors import TrtbuildError

# quant_algo values TensorRT-LLM writes for each recipe format (QuantAlgo names).
QUANT_ALGOS = {
    "none": (None,),
    "fp8": ("FP8",),
    "int4_awq": ("W4A16_AWQ",),
    "int8_sq": ("W8A8_SQ_PER_CHANNEL", "W8A8_SQ_PER_TENSOR_PLUGIN", "W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN",
                "W8A8_SQ_PER_CHANNEL_PER_TENSOR_PLUGIN", "W8A8_SQ_PER_TENSOR_PER_TOKEN_PLUGIN"),
}
KV_ALGOS = {"none": (None,), "fp8": ("FP8",), "int8": ("INT8",)}
RANK_ENGINE = re.compile(r"^rank(\d+)\.engine$")


class VerifyFailed(TrtbuildError):
    """The built engine does not match its recipe; it is not published."""


@dataclass
class VerifyReport:
    checks: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.checks)

    def add(self, name: str, expected: object, found: object, ok: bool | None = None) -> None:
        self.checks.append({"check": name, "expected": expected, "found": found,
                            "ok": (expected == found) if ok is None else ok})

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": self.checks}


def verify_engine(engine_dir: Path, expect: dict) -> VerifyReport:
    """Compare ``engine_dir`` with ``expect`` (the verify step's params); raise VerifyFailed on mismatch."""
    report = VerifyReport()
    config_path = engine_dir / "config.json"
    try:
        config = json.loads(config_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise VerifyFailed(f"{config_path}: missing or not JSON ({exc})",
                           hint="look at the build log: trtllm-build did not finish writing the engine") from None
    world = expect["tp"] * expect["pp"]
    ranks = sorted(int(m.group(1)) for p in engine_dir.iterdir() if (m := RANK_ENGINE.match(p.name)))
    report.add("rank engines", list(range(world)), ranks)
    empty = [f"rank{r}.engine" for r in ranks if (engine_dir / f"rank{r}.engine").stat().st_size == 0]
    report.add("engines non-empty", [], empty)
    report.add("top-level keys", ["build_config", "pretrained_config", "version"], sorted(config))
    report.add("trtllm version", expect["trtllm_version"], config.get("version"))

    pretrained = config.get("pretrained_config") or {}
    mapping = pretrained.get("mapping") or {}
    report.add("mapping.tp_size", expect["tp"], mapping.get("tp_size"))
    report.add("mapping.pp_size", expect["pp"], mapping.get("pp_size"))
    report.add("mapping.world_size", world, mapping.get("world_size"))
    quant = pretrained.get("quantization") or {}
    allowed = QUANT_ALGOS[expect["format"]]
    report.add("quantization.quant_algo", list(allowed), quant.get("quant_algo"), quant.get("quant_algo") in allowed)
    kv_allowed = KV_ALGOS[expect["kv_cache"]]
    report.add("quantization.kv_cache_quant_algo", list(kv_allowed), quant.get("kv_cache_quant_algo"),
               quant.get("kv_cache_quant_algo") in kv_allowed)

    build = config.get("build_config") or {}
    for name, value in expect["limits"].items():
        if value is not None:
            report.add(f"build_config.{name}", value, build.get(name))
    if not report.ok:
        failed = "; ".join(f"{c['check']}: expected {c['expected']!r}, found {c['found']!r}"
                           for c in report.checks if not c["ok"])
        raise VerifyFailed(f"{engine_dir}: engine does not match the recipe: {failed}",
                           hint="the engine was not published; check the toolchain pin and the build log")
    return report

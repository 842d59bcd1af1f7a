"""argparse parsers built from cli_spec.json (the recorded flags of one TensorRT-LLM release family:
trtbuild/data/cli_specs/<family>.json, copied into the image when it is built).

An unknown flag fails exactly as argparse does in the real tools (exit 2, "unrecognized arguments");
types and choices are validated; plugin flags take enable/disable or a dtype like the real ones. The
cross-flag checks trtllm-build's main() makes (the spec's main_rules) raise RuntimeError as main() does.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from trtllm_double import ROOT

KV_CACHE_TYPES = {"continuous": "CONTINUOUS", "paged": "PAGED", "disabled": "DISABLED"}


def spec() -> dict[str, Any]:
    return json.loads((ROOT / "cli_spec.json").read_text())


def kv_cache_type(value: str) -> str:
    """KVCacheType.from_string: continuous, paged or disabled."""
    try:
        return KV_CACHE_TYPES[value.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(
            f"invalid KVCacheType {value!r} (choose from continuous, paged, disabled)") from None


_TYPES = {"str": str, "int": int, "float": float}


def add_flag(parser: argparse.ArgumentParser, entry: dict[str, Any]) -> None:
    names = [entry["flag"], *entry.get("aliases", [])]
    typ: str = entry["type"]
    default = entry.get("default")
    if isinstance(default, str) and default.startswith("SUPPRESS"):
        default = argparse.SUPPRESS
    kw: dict[str, Any] = {"required": bool(entry.get("required"))}
    if typ == "store_true":
        parser.add_argument(*names, action="store_true", default=bool(default), **kw)
        return
    if typ == "enable/disable":
        parser.add_argument(*names, type=str, choices=["enable", "disable"],
                            default="enable" if default else "disable", **kw)
        return
    if typ.startswith("enum KVCacheType"):
        parser.add_argument(*names, type=kv_cache_type, default=default, **kw)
        return
    base = typ.split()[0]
    pytype = _TYPES.get(base, str)
    if "nargs=+" in typ:
        kw["nargs"] = "+"
    elif "nargs=?" in typ:
        kw["nargs"] = "?"
        if "const=" in typ:
            kw["const"] = typ.split("const=")[1].rstrip(")")
    if entry.get("choices") is not None:
        kw["choices"] = entry["choices"]
    if isinstance(default, str) and default is not argparse.SUPPRESS:
        try:  # argparse converts string defaults with `type`; keep only defaults that convert
            pytype(default)
        except ValueError:
            default = None
    parser.add_argument(*names, type=pytype, default=default, **kw)


def flags_of(tool: str) -> list[dict[str, Any]]:
    """The recorded flags of ``tool`` ("trtllm-build", "convert_checkpoint", "quantize")."""
    return list(spec()["tools"][tool]["flags"])


def parser_from(flags: list[dict[str, Any]], prog: str) -> argparse.ArgumentParser:
    """An argparse parser with exactly ``flags`` (entries of a cli_spec.json listing)."""
    parser = argparse.ArgumentParser(prog=prog, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for entry in flags:
        add_flag(parser, entry)
    return parser


def parser_for(tool: str, prog: str) -> argparse.ArgumentParser:
    """The parser of ``tool`` as the release family of this image records it."""
    return parser_from(flags_of(tool), prog)


def plugin_flags() -> list[dict[str, Any]]:
    """The plugin flags of trtllm-build (those whose choices are derived from the plugin config)."""
    return [e for e in flags_of("trtllm-build") if e.get("choices_derived")]


def _holds(cond: dict[str, Any], args: argparse.Namespace) -> bool:
    if "any" in cond:
        return any(_holds(c, args) for c in cond["any"])
    value = getattr(args, cond["flag"][2:], None)
    if "equals" in cond:
        return value == cond["equals"]
    if "greater_than" in cond:
        return value is not None and value > cond["greater_than"]
    return value not in (None, False)


def main_rule_errors(args: argparse.Namespace, rules: list[dict[str, Any]] | None = None) -> list[str]:
    """What trtllm-build's main() raises for ``args`` (the spec's recorded main_rules)."""
    rules = spec().get("main_rules", []) if rules is None else rules
    return [r["raises"] for r in rules if all(_holds(c, args) for c in r["when"])]

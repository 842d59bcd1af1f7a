"""The recorded command-line interfaces of TensorRT-LLM tools, and argv validation against them.

The spec (``data/trtllm_cli_spec.json``) was read from TensorRT-LLM's own source at the commits it names.
Every argv the planner emits for trtllm-build, convert_checkpoint.py and quantize is checked here, so a
flag the pinned release does not have is caught before a container starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

# spec family of a toolchain -> tool -> the listings that make up its flags
_LISTINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "1.x": {
        "trtllm-build": ("trtllm-build",),
        "convert_checkpoint": ("convert_checkpoint_llama",),
        "quantize": ("quantize",),
    },
    "0.2x": {
        "trtllm-build": ("trtllm-build", "trtllm-build_0.2x_extra"),
        "convert_checkpoint": ("convert_checkpoint_llama",),
        "quantize": ("quantize",),
    },
}
SPEC_FAMILIES = tuple(_LISTINGS)


@dataclass(frozen=True)
class Flag:
    name: str
    type: str
    default: object
    choices: tuple[object, ...] | None
    deprecated: bool = False

    @property
    def takes_value(self) -> bool:
        return self.type != "store_true"

    @property
    def takes_many(self) -> bool:
        return "nargs=+" in self.type

    def check_value(self, value: str) -> str | None:
        """Return a problem with ``value`` for this flag, or None when argparse would accept it."""
        if self.choices is not None:
            allowed = [c for c in self.choices if c is not None]
            if value not in [str(c) for c in allowed]:
                return f"{value!r} is not one of {', '.join(map(str, allowed))}"
            return None
        if self.type.startswith("enum KVCacheType"):
            # KVCacheType.from_string; the help text lists these three.
            if value.lower() not in ("continuous", "paged", "disabled"):
                return f"{value!r} is not one of continuous, paged, disabled"
            return None
        kind = self.type.split(" ")[0]
        try:
            if kind == "int":
                int(value)
            elif kind == "float":
                float(value)
        except ValueError:
            return f"{value!r} is not a valid {kind}"
        return None


@cache
def _raw_spec() -> dict:
    return json.loads(resources.files("trtbuild.data").joinpath("trtllm_cli_spec.json").read_text("utf-8"))


@cache
def flags(tool: str, family: str) -> dict[str, Flag]:
    """Every flag (aliases included) of ``tool`` in the toolchain spec ``family``."""
    spec = _raw_spec()
    out: dict[str, Flag] = {}
    for listing in _LISTINGS[family][tool]:
        for entry in spec[listing]:
            flag = Flag(
                name=entry["flag"],
                type=str(entry["type"]),
                default=entry.get("default"),
                choices=tuple(entry["choices"]) if entry.get("choices") is not None else None,
                deprecated=bool(entry.get("deprecated", False)),
            )
            for name in (entry["flag"], *entry.get("aliases", [])):
                out[name] = flag
    return out


def check_argv(argv: list[str], tool: str, family: str) -> list[str]:
    """Problems argparse of the real ``tool`` would raise for ``argv`` (flags only, ``--flag value`` form)."""
    known = flags(tool, family)
    problems: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        name, eq, inline = token.partition("=")
        if not name.startswith("--"):
            problems.append(f"unexpected argument {token!r}")
            i += 1
            continue
        flag = known.get(name)
        if flag is None:
            problems.append(f"unrecognized argument {name}")
            i += 1
            while i < len(argv) and not argv[i].startswith("--"):  # its values, whatever its arity
                i += 1
            continue
        if not flag.takes_value:
            if eq:
                problems.append(f"{name} takes no value")
            i += 1
            continue
        if flag.takes_many and not eq:
            j = i + 1
            while j < len(argv) and not argv[j].startswith("--"):
                j += 1
            if j == i + 1:
                problems.append(f"{name} expects at least one value")
            i = j
            continue
        if eq:
            value, i = inline, i + 1
        elif i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
        else:
            problems.append(f"{name} expects a value")
            break
        problem = flag.check_value(value)
        if problem:
            problems.append(f"{name}: {problem}")
    return problems

"""The recorded command-line interfaces of TensorRT-LLM tools, one spec per release family.

``data/cli_specs/<family>.json`` holds, for one release line (``0.21``, ``1.0``, ``1.1``, ``1.2``, ``1.3``):
the flags of ``trtllm-build``, ``convert_checkpoint.py`` and ``quantize.py`` as read from TensorRT-LLM's own
source at the commits it names, whether that source is proven to be the release tag, and the cross-flag
rules trtllm-build's ``main()`` enforces before building. Every argv the planner emits is checked here, so a
flag the pinned release does not have is caught before a container starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

TOOLS = ("trtllm-build", "convert_checkpoint", "quantize")
SPEC_DIR = "cli_specs"
SCHEMA = "trtbuild.cli_spec/1"


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


@dataclass(frozen=True)
class MainRule:
    """A check trtllm-build's main() makes on its arguments before building (it raises when all hold)."""

    id: str
    when: tuple[dict[str, Any], ...]
    raises: str
    source: str

    @property
    def flags(self) -> list[str]:
        """The flags the rule looks at, in the order it names them."""
        out: list[str] = []
        for cond in self.when:
            for c in cond.get("any", [cond]):
                out.append(c["flag"])
        return out


@dataclass(frozen=True)
class SpecInfo:
    """Where a family's spec comes from and how far it can be trusted."""

    family: str
    releases: tuple[str, ...]
    proven_tag: bool
    exact: bool
    tag: dict[str, Any]
    about: str
    sources: dict[str, tuple[str, ...]]


def _spec_files() -> dict[str, Any]:
    root = resources.files("trtbuild.data").joinpath(SPEC_DIR)
    return {p.name.removesuffix(".json"): p for p in root.iterdir() if p.name.endswith(".json")}


@cache
def families() -> tuple[str, ...]:
    """The recorded spec families, oldest first."""
    return tuple(sorted(_spec_files(), key=lambda f: tuple(int(x) for x in f.split("."))))


@cache
def raw_spec(family: str) -> dict[str, Any]:
    """The JSON of one family's spec (KeyError for an unknown family)."""
    data: dict[str, Any] = json.loads(_spec_files()[family].read_text("utf-8"))
    if data.get("schema") != SCHEMA or data.get("family") != family:
        raise ValueError(f"{SPEC_DIR}/{family}.json: not a {SCHEMA} spec of family {family}")
    return data


def family_for_version(trtllm_version: str) -> str | None:
    """The recorded family whose releases include ``trtllm_version``, else the one of its major.minor line."""
    for family in families():
        if trtllm_version in raw_spec(family)["releases"]:
            return family
    line = ".".join(trtllm_version.split(".")[:2])
    return line if line in families() else None


def info(family: str) -> SpecInfo:
    data = raw_spec(family)
    return SpecInfo(
        family=family,
        releases=tuple(data["releases"]),
        proven_tag=bool(data["proven_tag"]),
        exact=bool(data["exact"]),
        tag=dict(data["tag"]),
        about=data["about"],
        sources={tool: tuple(body["sources"]) for tool, body in data["tools"].items()},
    )


@cache
def flags(tool: str, family: str) -> dict[str, Flag]:
    """Every flag (aliases included) of ``tool`` in the toolchain spec ``family``."""
    out: dict[str, Flag] = {}
    for entry in raw_spec(family)["tools"][tool]["flags"]:
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


@cache
def main_rules(family: str) -> tuple[MainRule, ...]:
    return tuple(
        MainRule(id=r["id"], when=tuple(r["when"]), raises=r["raises"], source=r["source"])
        for r in raw_spec(family).get("main_rules", [])
    )


def parse_argv(argv: list[str]) -> dict[str, str | None]:
    """``--flag value`` / ``--flag=value`` / bare ``--switch`` -> {flag: value or None} (last one wins)."""
    out: dict[str, str | None] = {}
    i = 0
    while i < len(argv):
        name, eq, inline = argv[i].partition("=")
        if not name.startswith("--"):
            i += 1
            continue
        if eq:
            out[name] = inline
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[name] = argv[i + 1]
            i += 1
        else:
            out[name] = None
        i += 1
    return out


def _holds(cond: dict[str, Any], given: dict[str, str | None]) -> bool:
    if "any" in cond:
        return any(_holds(c, given) for c in cond["any"])
    flag = cond["flag"]
    if flag not in given:
        return False
    value = given[flag]
    if "equals" in cond:
        return value == cond["equals"]
    if "greater_than" in cond:
        try:
            return value is not None and float(value) > cond["greater_than"]
        except ValueError:
            return False
    return bool(cond.get("present"))


def broken_main_rules(argv: list[str], family: str) -> list[MainRule]:
    """The recorded main() rules of trtllm-build that ``argv`` trips (main() would raise)."""
    given = parse_argv(argv)
    return [rule for rule in main_rules(family) if all(_holds(c, given) for c in rule.when)]


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

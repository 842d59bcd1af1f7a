"""The recorded LLM-API options of a pinned TensorRT-LLM release, and serve-config checks against them.

``data/trtllm_llmapi_spec.json`` holds ``TorchLlmArgs`` (with what it inherits from ``BaseLlmArgs``) and the
config classes of its table fields, read from TensorRT-LLM's ``tensorrt_llm/llmapi/llm_args.py`` at the
commit each family names. A recipe's ``[serve]`` table (the YAML trtllm-serve takes through ``--config``) is
checked here key by key: unknown keys are refused with a did-you-mean, values are type- and range-checked,
tables whose class was not recorded are refused rather than passed unchecked, and a few of upstream's own
validators that need no GPU are repeated.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# upstream's before-validator of cuda_graph_config: a table without "mode" is "encode" when one of these
# is set
_ENCODER_GRAPH_KEYS = ("num_tokens", "max_num_token", "seq_lens", "max_seq_len")


@dataclass(frozen=True)
class ServeProblem:
    path: str  # dotted key inside the serve config, e.g. "kv_cache_config.dtype"
    message: str
    fix: str
    value: object = None


@cache
def _raw() -> dict[str, Any]:
    text = resources.files("trtbuild.data").joinpath("trtllm_llmapi_spec.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def families() -> tuple[str, ...]:
    return tuple(_raw()["families"])


def source(family: str) -> dict[str, Any]:
    """Where the family's field list was read (repository, path, commit, whether it is a proven tag)."""
    src: dict[str, Any] = _raw()["families"][family]["source"]
    return src


def _classes(family: str) -> dict[str, dict[str, Any]]:
    classes: dict[str, dict[str, Any]] = _raw()["families"][family]["classes"]
    return classes


def fields(family: str, cls: str | None = None) -> dict[str, dict[str, Any]]:
    """The recorded fields of ``cls`` (default: the root class, TorchLlmArgs)."""
    return _classes(family)[cls or _raw()["families"][family]["root"]]


def _where(family: str) -> str:
    src = source(family)
    return f"{src['path']}@{src['commit'][:8]}"


def did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(sorted(options))}"


def check_config(config: dict[str, Any], family: str) -> list[ServeProblem]:
    """Every problem of ``config`` against the family's recorded TorchLlmArgs (empty when it is valid)."""
    checker = _Checker(family)
    checker.table(config, fields(family), "")
    checker.cross_field(config)
    return checker.problems


class _Checker:
    def __init__(self, family: str) -> None:
        self.family = family
        self.problems: list[ServeProblem] = []
        self.removed: dict[str, str] = _raw()["families"][family].get("removed_but_accepted", {})

    def add(self, path: str, message: str, fix: str, value: object = None) -> None:
        self.problems.append(ServeProblem(path, message, fix, value))

    def table(self, value: Any, spec: dict[str, dict[str, Any]], prefix: str) -> None:
        if not isinstance(value, dict):
            self.add(prefix.rstrip("."), "must be a table", "write a TOML table of LLM-API options", value)
            return
        for key, item in value.items():
            path = f"{prefix}{key}"
            field = spec.get(key)
            if field is None:
                if not prefix and key in self.removed:
                    self.add(path, f"removed from TorchLlmArgs ({self.removed[key]})", "remove it", item)
                else:
                    self.add(
                        path,
                        f"not an LLM-API option of this release ({_where(self.family)})",
                        f"remove it; {did_you_mean(key, list(spec))}",
                        item,
                    )
                continue
            self.value(item, field, path)

    def value(self, value: Any, field: dict[str, Any], path: str) -> None:
        if field.get("managed"):
            self.add(path, f"set by trtbuild: {field['managed']}", "remove it", value)
            return
        kind = field["type"]
        if kind == "object":
            self.add(path, "takes a Python object, which a config file cannot carry", "remove it", value)
        elif kind == "table":
            self.sub_table(value, field, path)
        elif kind == "dict[str,table]":
            if not isinstance(value, dict):
                self.add(path, "must be a table of tables", "write [serve.<field>.<name>] tables", value)
                return
            for name, sub in value.items():
                self.table(sub, fields(self.family, field["class"]), f"{path}.{name}.")
        else:
            problem = _scalar_problem(value, field)
            if problem:
                self.add(path, problem[0], problem[1], value)

    def sub_table(self, value: Any, field: dict[str, Any], path: str) -> None:
        cls = field["class"]
        if field.get("recorded") is False:
            self.add(
                path,
                f"trtbuild has not recorded the fields of {cls} ({_where(self.family)}), "
                "so it cannot check them",
                "remove it, or record the class's fields from that commit in "
                "trtbuild/data/trtllm_llmapi_spec.json",
                value,
            )
            return
        if not isinstance(value, dict):
            self.add(path, f"must be a table ({cls})", f"write a [serve.{path}] table", value)
            return
        union = field.get("union")
        if union:
            mode = value.get(field["discriminator"])
            if mode is None:  # upstream infers it the same way before validating
                mode = (
                    "encode" if any(value.get(k) not in (None, 0) for k in _ENCODER_GRAPH_KEYS) else "decode"
                )
            if mode not in union:
                self.add(
                    f"{path}.{field['discriminator']}",
                    "not an allowed value",
                    f"use one of {list(union)}",
                    mode,
                )
                return
            cls = union[mode]
        self.table(value, fields(self.family, cls), f"{path}.")

    def cross_field(self, config: dict[str, Any]) -> None:
        """Checks upstream's validators make that need neither a GPU nor the checkpoint."""
        graph = config.get("cuda_graph_config")
        if isinstance(graph, dict) and isinstance(graph.get("batch_sizes"), list) and graph["batch_sizes"]:
            biggest, declared = max(graph["batch_sizes"]), graph.get("max_batch_size", 0)
            if declared not in (0, biggest):
                self.add(
                    "cuda_graph_config.max_batch_size",
                    f"must equal max(batch_sizes) = {biggest} when both are given",
                    "drop max_batch_size or make it the largest batch size",
                    declared,
                )
        sched = config.get("scheduler_config")
        if isinstance(sched, dict) and "dynamic_batch_config" in sched:
            self.add(
                "scheduler_config.dynamic_batch_config",
                "applies to the TensorRT backend only and cannot be used with the PyTorch backend "
                "(field description)",
                "remove it",
                sched["dynamic_batch_config"],
            )
        peft = config.get("peft_cache_config")
        if isinstance(peft, dict) and peft.get("lora_prefetch_dir") is not None:
            self.add("peft_cache_config.lora_prefetch_dir", "LoRA prefetch is not supported", "remove it")
        kv = config.get("kv_cache_config")
        if isinstance(kv, dict):
            if (
                isinstance(kv.get("disk_cache_size"), int)
                and kv["disk_cache_size"] > 0
                and not kv.get("disk_cache_path")
            ):
                self.add(
                    "kv_cache_config.disk_cache_path",
                    "must be set when disk_cache_size is positive",
                    "set it",
                )
            ratio = kv.get("pool_ratio")
            if isinstance(ratio, list) and ratio and all(isinstance(r, (int, float)) for r in ratio):
                if abs(sum(ratio) - 1.0) > 1e-6 or any(r <= 0 for r in ratio):
                    self.add(
                        "kv_cache_config.pool_ratio",
                        "values must be positive and sum to 1.0",
                        "fix them",
                        ratio,
                    )
        pairs = (
            ("encoder_cuda_graph_config", "encoder_max_batch_size", "needs encoder_max_batch_size"),
            (
                "ray_worker_extension_cls",
                "orchestrator_type",
                "is only supported with orchestrator_type = 'ray'",
            ),
        )
        for key, needed, message in pairs:
            if config.get(key) is not None and config.get(needed) in (None, "rpc"):
                self.add(key, message, f"set {needed} or remove {key}")
        exclusive = (
            ("encode_only", "mm_encoder_only"),
            ("disable_mm_encoder", "mm_encoder_only"),
            ("enable_speculative_beam_history_d2h", "sampler_force_async_worker"),
        )
        for a, b in exclusive:
            if config.get(a) is True and config.get(b) is True:
                self.add(a, f"cannot be combined with {b} = true", f"set one of {a} / {b}")
        if (
            config.get("enable_mla_skip_correction") is True
            and str(config.get("attn_backend", "TRTLLM")).upper() != "TRTLLM"
        ):
            self.add(
                "enable_mla_skip_correction",
                "requires attn_backend = 'TRTLLM'",
                "set attn_backend or drop it",
            )


_TYPE_WORDS = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "str": "a quoted string",
    "list[int]": "a list of integers",
    "list[float]": "a list of numbers",
    "list[str]": "a list of strings",
    "list[list[int]]": "a list of integer lists",
    "dict[str,str]": "a table of strings",
    "dict[str,scalar]": "a table of strings, numbers or booleans",
    "dict[str,any]": "a table",
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_ok(value: Any, kind: str) -> bool:
    checks = {
        "bool": lambda v: isinstance(v, bool),
        "int": _is_int,
        "float": _is_number,
        "str": lambda v: isinstance(v, str),
        "list[int]": lambda v: isinstance(v, list) and all(_is_int(x) for x in v),
        "list[float]": lambda v: isinstance(v, list) and all(_is_number(x) for x in v),
        "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "list[list[int]]": lambda v: isinstance(v, list)
        and all(isinstance(x, list) and all(_is_int(y) for y in x) for x in v),
        "dict[str,str]": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        "dict[str,scalar]": lambda v: isinstance(v, dict)
        and all(isinstance(x, (str, int, float, bool)) for x in v.values()),
        "dict[str,any]": lambda v: isinstance(v, dict),
    }
    return checks[kind](value)


def _scalar_problem(value: Any, field: dict[str, Any]) -> tuple[str, str] | None:
    """(message, fix) when ``value`` does not fit ``field``, else None."""
    kind = field["type"]
    if kind in ("literal", "enum"):
        allowed = field["values"]
        if field.get("case_insensitive") and isinstance(value, str):
            if value.lower() in (a.lower() for a in allowed):
                return None
        elif value in allowed:
            return None
        return "not an allowed value", f"use one of {allowed}"
    if value in field.get("or_values", ()) or (field.get("or_type") == "str" and isinstance(value, str)):
        return None
    if not _type_ok(value, kind):
        return f"wrong type ({type(value).__name__})", f"write {_TYPE_WORDS[kind]}"
    bounds = (
        ("ge", "≥", lambda v, b: v >= b),
        ("gt", ">", lambda v, b: v > b),
        ("le", "≤", lambda v, b: v <= b),
        ("lt", "<", lambda v, b: v < b),
    )
    for key, word, ok in bounds:
        if key in field and _is_number(value) and not ok(value, field[key]):
            return f"must be {word} {field[key]}", f"use a value {word} {field[key]}"
    if "min_length" in field and len(value) < field["min_length"]:
        return f"needs at least {field['min_length']} item(s)/character(s)", "give a longer value"
    if "item_gt" in field and any(x <= field["item_gt"] for x in value):
        return f"every item must be > {field['item_gt']}", "use positive values"
    if "item_len" in field and any(len(x) != field["item_len"] for x in value):
        return (
            f"every item must have {field['item_len']} values",
            f"write pairs like [{', '.join(['1'] * field['item_len'])}]",
        )
    return None

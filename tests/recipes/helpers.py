"""Build recipe files for tests from a valid base plus changes."""

from __future__ import annotations

import copy
from pathlib import Path

import tomli_w

BASE = {
    "name": "test-recipe",
    "model": {"source": "hf://meta-llama/Meta-Llama-3-8B-Instruct", "revision": "main", "dtype": "bfloat16"},
    "quantization": {"format": "fp8", "kv_cache": "fp8"},
    "parallelism": {"tp": 1, "pp": 1},
    "limits": {"max_batch_size": 8, "max_input_len": 1024, "max_seq_len": 2048},
    "build": {"gemm_plugin": "auto"},
    "target": {"gpu_arch": "sm90", "toolchain": "trtllm-1.1.0"},
}

DELETE = object()


def recipe_dict(changes: dict | None = None) -> dict:
    """BASE with ``changes`` applied: keys are dotted paths, DELETE removes a key."""
    data = copy.deepcopy(BASE)
    for dotted, value in (changes or {}).items():
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return data


def write_recipe(directory: Path, changes: dict | None = None, name: str = "recipe.toml") -> Path:
    path = directory / name
    path.write_text(tomli_w.dumps(recipe_dict(changes)))
    return path

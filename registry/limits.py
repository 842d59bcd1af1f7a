"""Limits on what the registry accepts: JSON documents (metadata, provenance) and manifest file paths.

Checked before anything is written, so a hostile or careless input is refused with a message naming the
field, never a traceback or a row that a reader cannot handle. Paths must be ones a Linux file system can
hold: each component at most 255 bytes, the whole at most MAX_PATH_BYTES, no control characters.
"""

from __future__ import annotations

import math
from typing import Any

MAX_JSON_BYTES = 1 << 20  # canonical JSON of a metadata or provenance document
MAX_JSON_DEPTH = 32
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1  # what JSON readers and PostgreSQL bigint hold exactly
MAX_COMPONENT_BYTES = 255  # NAME_MAX of Linux file systems
MAX_PATH_BYTES = 1024  # a relative path inside an artifact (PATH_MAX is 4096 with the destination)
MAX_PATH_DEPTH = 64
MAX_FILES = 100_000


def json_problem(obj: Any) -> str | None:
    """Why ``obj`` is not an acceptable JSON document (type, depth, integer range, NUL, size), or None."""
    todo: list[tuple[Any, str, int]] = [(obj, "", 0)]
    while todo:
        value, where, depth = todo.pop()
        at = where or "(top level)"
        if depth > MAX_JSON_DEPTH:
            return f"{at}: nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    return f"{at}: key {key!r} is not a string"
                if text_problem(key):
                    return f"{at}: key {key[:40]!r} {text_problem(key)}"
                todo.append((item, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(value, list):
            todo += [(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not INT_MIN <= value <= INT_MAX:
                return f"{at}: integer out of the 64-bit range"
        elif isinstance(value, float):
            if not math.isfinite(value):
                return f"{at}: {value} is not a finite number"
        elif isinstance(value, str):
            if text_problem(value):
                return f"{at}: {text_problem(value)}"
        else:
            return f"{at}: {type(value).__name__} is not a JSON value"
    from registry.canonical import canonical_json

    size = len(canonical_json(obj))
    if size > MAX_JSON_BYTES:
        return f"{size} bytes of JSON, more than {MAX_JSON_BYTES}"
    return None


def text_problem(text: str) -> str | None:
    """NUL (PostgreSQL cannot store it) or a lone surrogate (not UTF-8)."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    return None


def path_problem(path: str) -> str | None:
    """Why a relative artifact path cannot be written on a Linux file system, or None."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "contains a control character (a newline, tab ...)"
    try:
        raw = path.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if len(raw) > MAX_PATH_BYTES:
        return f"is {len(raw)} bytes long, more than {MAX_PATH_BYTES}"
    parts = path.split("/")
    if len(parts) > MAX_PATH_DEPTH:
        return f"is {len(parts)} directories deep, more than {MAX_PATH_DEPTH}"
    for part in parts:
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            return f"has a component of more than {MAX_COMPONENT_BYTES} bytes"
    return None

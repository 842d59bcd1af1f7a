"""One problem found in a recipe: the field, what is wrong, the fix and the offending value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    field: str
    message: str
    fix: str
    value: object = None

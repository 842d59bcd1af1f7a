"""tests/constraints.txt pins every package the test environment installs, at a version its requirement
in pyproject.toml allows (tests/run.sh installs with ``-c tests/constraints.txt``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.quantize.venvs import STACKS, VENV_PINS, constraints

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("quantize", "postgres", "farm", "test")  # what tests/run.sh installs


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "tests" / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"tests/constraints.txt: {line!r} is not an exact pin (name==version)"
        key = canonicalize_name(name)
        assert key not in pins, f"tests/constraints.txt pins {name} twice"
        pins[key] = Version(version)
    return pins


def test_every_requirement_is_pinned_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"]]
    for extra in EXTRAS:
        requirements += project["optional-dependencies"][extra]
    pins = _pins()
    for text in requirements:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (pyproject.toml) has no pin in tests/constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"tests/constraints.txt pins {req.name}=={pins[name]}, outside pyproject.toml's {req.specifier}"
        )
    # what tests/run.sh installs besides pyproject's lists, and packages an extra brings (psycopg[binary])
    assert {"torch", "psycopg-binary", "botocore", "s3transfer"} <= set(pins)


def test_modelopt_venvs_pin_what_they_add():
    test_pins = _pins()
    for stack in STACKS:
        lines = constraints(stack)
        names = [canonicalize_name(line.split("==", 1)[0]) for line in lines]
        assert all("==" in line for line in lines), lines
        assert len(names) == len(set(names)), f"{stack.name}: a package pinned twice"
        own = dict(line.split("==", 1) for line in lines)
        assert own["nvidia-modelopt"] == stack.modelopt and own["transformers"] == stack.transformers
        for pin in (*VENV_PINS, *stack.pins):
            assert pin in lines
        # everything else comes from the test environment's pins
        assert set(names) >= set(test_pins)

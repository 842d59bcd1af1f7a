"""docs/farm.md only uses `trtbuild` verbs, farm subcommands and flags the CLI has."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tests.bake.test_ci_docs import available, check_flags, invocations

DOC = Path(__file__).resolve().parents[2] / "docs" / "farm.md"


def test_farm_doc_commands_exist():
    blocks = re.findall(r"```(?:bash|sh|shell)\n(.*?)```", DOC.read_text(), flags=re.S)
    calls = [call for block in blocks for call in invocations(block)]
    assert {verb for verb, _ in calls} == {"farm"}
    problems = {}
    for verb, argv in calls:
        command = available(verb)
        assert command is not None, verb
        if verb == "farm":
            assert isinstance(command, click.Group) and argv and argv[0] in command.commands, argv
            command, argv = command.commands[argv[0]], argv[1:]
        unknown = check_flags(command, argv)
        if unknown:
            problems[f"{verb} {' '.join(argv)}"] = unknown
    assert problems == {}

"""The GitHub Actions example and the deploy docs only use trtbuild verbs and flags the CLI has.

Verbs come from several branches (matrix, build, pull, resolve are not bake's); each verb in EXPECTED_VERBS
is checked against the click command tree once it is registered in trtbuild.cli.COMMANDS.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from trtbuild.cli import COMMANDS, cli

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "examples" / "ci" / "github-actions-prebake.yml"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
EXPECTED_VERBS = {WORKFLOW: {"matrix", "build", "bake"}, DEPLOY_DOC: {"pull", "resolve", "bake"}}
INVOCATION = re.compile(r"(?<![\w/.-])trtbuild\s+([a-z][a-z-]*)([^\n|;&)`]*)")


def invocations(script: str) -> list[tuple[str, list[str]]]:
    """(verb, argv) of every `trtbuild VERB ...` in a shell script (continuations joined)."""
    script = script.replace("\\\n", " ")
    found = []
    for verb, rest in INVOCATION.findall(script):
        rest = rest.split(" #", 1)[0]
        try:
            argv = shlex.split(rest)
        except ValueError:  # an unbalanced quote closing in a $(...) we cut at ')'
            argv = shlex.split(rest + '"')
        for i, token in enumerate(argv):  # stop at shell redirections
            if token in (">", ">>", "<", "2>", "2>&1"):
                argv = argv[:i]
                break
        found.append((verb, argv))
    return found


def workflow_scripts() -> list[str]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    return [step["run"] for job in doc["jobs"].values() for step in job["steps"] if "run" in step]


def doc_scripts() -> list[str]:
    text = DEPLOY_DOC.read_text()
    blocks = re.findall(r"```(?:bash|sh|shell|yaml)\n(.*?)```", text, flags=re.S)
    return blocks


def available(verb: str) -> click.Command | None:
    """The verb's click command when it is registered and its module is on this branch."""
    if verb not in COMMANDS:
        return None
    try:
        return cli.get_command(click.Context(cli), verb)
    except ImportError:
        return None


def check_flags(command: click.Command, argv: list[str]) -> list[str]:
    known = set()
    for param in command.params:
        known.update(getattr(param, "opts", []))
        known.update(getattr(param, "secondary_opts", []))
    known.update({"--help", "-h"})
    return [arg.split("=", 1)[0] for arg in argv if arg.startswith("-") and arg.split("=", 1)[0] not in known]


def test_workflow_is_valid_actions_yaml():
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert doc["name"] and set(doc["jobs"]) == {"matrix", "bake"}
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads the key `on` as true
    assert "workflow_dispatch" in on
    bake = doc["jobs"]["bake"]
    assert bake["needs"] == "matrix" and "gpu" in bake["runs-on"] and "self-hosted" in bake["runs-on"]
    assert bake["strategy"]["matrix"] == "${{ fromJSON(needs.matrix.outputs.matrix) }}"
    assert "matrix.engine_key" in bake["concurrency"]["group"]
    for name in ("TRTBUILD_DB_URL", "TRTBUILD_STORE_URL"):
        assert doc["env"][name] == f"${{{{ secrets.{name} }}}}"
    for job in doc["jobs"].values():
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step


@pytest.mark.parametrize("source", [WORKFLOW, DEPLOY_DOC], ids=["workflow", "deploy-doc"])
def test_trtbuild_commands_exist(source):
    scripts = workflow_scripts() if source == WORKFLOW else doc_scripts()
    calls = [call for script in scripts for call in invocations(script)]
    verbs = {verb for verb, _ in calls}
    assert verbs == EXPECTED_VERBS[source], "update EXPECTED_VERBS with the verbs the file uses"
    missing = sorted(verb for verb in verbs if available(verb) is None)
    problems = {}
    for verb, argv in calls:
        command = available(verb)
        if command is not None:
            unknown = check_flags(command, argv)
            if unknown:
                problems[verb] = unknown
    assert not problems, f"flags the CLI does not have: {problems}"
    for verb, argv in calls:  # bake's own lines must parse completely (choices, required options)
        if verb == "bake":
            available("bake").make_context("bake", list(argv))
    assert available("bake") is not None
    if missing:
        pytest.skip(f"verbs not registered on this branch yet (checked after merge): {', '.join(missing)}")


def test_deploy_doc_init_container_gives_the_runtime_version():
    """The documented init container pulls with --resolve *and* the server image's TensorRT-LLM version
    (without it, resolve picked the newest engine of any release: a 1.0.0 engine for a 1.1.0 server)."""
    manifests = [
        yaml.safe_load(block)
        for block in re.findall(r"```yaml\n(.*?)```", DEPLOY_DOC.read_text(), flags=re.S)
        if "initContainers" in block
    ]
    assert manifests
    for manifest in manifests:
        pod = manifest["spec"]["template"]["spec"]
        server_versions = {c["image"].rsplit(":", 1)[1] for c in pod["containers"]}
        for init in pod["initContainers"]:
            argv = [*init.get("command", [])[1:], *init.get("args", [])]
            if "--resolve" in argv:
                assert "--trtllm" in argv, init
                assert argv[argv.index("--trtllm") + 1] in server_versions
                assert not check_flags(available("pull"), argv[1:])
    for verb, argv in (call for script in doc_scripts() for call in invocations(script)):
        if verb == "resolve" or "--resolve" in argv:
            assert "--trtllm" in argv or "--serving-image" in argv, (verb, argv)

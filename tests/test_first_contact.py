"""First contact: README's quick start on a new Debian/Ubuntu machine (system Python, PEP 668), bounded
dependencies, a tool image for init containers, and no reference to paths outside the repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
DOCKERFILE = REPO / "dockerfiles" / "trtbuild.Dockerfile"


def _quick_start() -> list[str]:
    section = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block, "the quick start has a bash block"
    text = block.group(1).replace("\\\n", " ")
    return [line.split("  #", 1)[0].strip() for line in text.splitlines() if line.strip()]


def test_quick_start_is_two_commands_in_a_venv() -> None:
    """A bare `pip install -e .` is refused by Debian/Ubuntu's system Python (externally managed)."""
    first, second = _quick_start()
    assert "python3 -m venv .venv" in first and "python3-venv" in first
    assert (
        ".venv/bin/pip install -e ." in first and ".venv/bin/trtbuild build" in first and "--dry-run" in first
    )
    assert re.sub(r"\.venv/bin/pip install", "", first).count("pip install") == 0
    assert second.endswith("bash tests/run.sh")


def test_run_sh_uses_a_venv_on_an_externally_managed_python(tmp_path: Path) -> None:
    """tests/run.sh's Python choice (tests/python_env.sh), with a stand-in python3 that is externally
    managed and makes venvs: the venv is made and put first on PATH."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "python3").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = venv ]; then\n'
        '  mkdir -p "$3/bin"; cp "$0" "$3/bin/python3"; exit 0\n'
        "fi\n"
        "exit 0  # the EXTERNALLY-MANAGED probe: yes\n"
    )
    (fake_bin / "python3").chmod(0o755)
    script = f"source {REPO / 'tests' / 'python_env.sh'}; python_env {tmp_path}; command -v python3"
    r = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "PATH": f"{fake_bin}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / ".venv" / "bin" / "python3")
    assert "externally managed (PEP 668)" in r.stderr
    assert "python_env.sh" in (REPO / "tests" / "run.sh").read_text()


def test_dependencies_that_broke_before_are_bounded() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    by_name = {re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0].lower(): d for d in deps}
    for name in ("huggingface_hub", "sqlalchemy", "pydantic", "click", "docker", "boto3", "alembic"):
        assert "<" in by_name[name], f"{by_name[name]}: no upper bound"


def test_no_file_refers_outside_the_repository() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    r = subprocess.run(
        [
            "git",
            "grep",
            "-n",
            "-F",
            "-e",
            "../shared",
            "-e",
            "/work/",
            "--",
            ".",
            ":!tests/test_first_contact.py",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert r.stdout == "", r.stdout


def test_the_tool_image_installs_a_working_trtbuild(tmp_path: Path) -> None:
    """What dockerfiles/trtbuild.Dockerfile does, offline: copy what it copies (the .dockerignore's list),
    install it non-editable into a venv (dependencies from this Python), and run trtbuild from elsewhere:
    the toolchain pins, templates and migrations must ship with the package."""
    src = tmp_path / "src"
    for line in re.findall(r"^COPY (.+)$", DOCKERFILE.read_text(), flags=re.M):
        *sources, dest = line.split()
        for rel in sources:  # COPY a b dir/ (into dir) or COPY a path (to path), relative to WORKDIR /src
            target = src / dest / Path(rel).name if dest.endswith("/") else src / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if (REPO / rel).is_dir() else shutil.copy)(REPO / rel, target)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True
    )
    pip = subprocess.run(
        [
            str(venv / "bin/python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(src),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert pip.returncode == 0, pip.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TRTBUILD_HOME": str(tmp_path / "h")}
    run = lambda *a: subprocess.run(  # noqa: E731
        [str(venv / "bin/trtbuild"), *a], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    where = subprocess.run(
        [str(venv / "bin/python"), "-c", "import trtbuild; print(trtbuild.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert str(venv) in where.stdout, "the installed copy, not the checkout, is imported"
    r = run("validate", str(venv / "share/trtbuild/toolchains.toml"))
    assert r.returncode == 0 and "toolchain pins" in r.stdout, r.stdout + r.stderr
    r = run("ls")  # the catalog migrations ship too
    assert r.returncode == 0 and r.stdout.startswith("HASH"), r.stderr
    assert 'ENTRYPOINT ["trtbuild"]' in DOCKERFILE.read_text() and "USER 10001" in DOCKERFILE.read_text()


def test_deploy_doc_builds_the_init_container_image_from_the_repository() -> None:
    doc = (REPO / "docs" / "deploy.md").read_text()
    assert "docker build -f dockerfiles/trtbuild.Dockerfile" in doc and DOCKERFILE.is_file()
    assert "pip install trtbuild" not in doc  # not published anywhere a user can reach

"""Every failure of the CLI is a plain `error:` with a `fix:` and a documented exit code, never a
traceback: each case found by trying trtbuild as a new user (issue 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import RECIPES, REPO
from tests.recipes.helpers import write_recipe


def trtbuild(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trtbuild", *args],
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def plain(r: subprocess.CompletedProcess, code: int, *phrases: str) -> None:
    """Exit ``code``, an `error:` line, a `fix:` line, the phrases, and no traceback."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "error:" in r.stderr and "fix:" in r.stderr, r.stderr
    for phrase in phrases:
        assert phrase in r.stderr, (phrase, r.stderr)


def test_lock_with_the_hub_unreachable(tmp_path: Path) -> None:
    """huggingface_hub 2.x raises its HTTP client's errors (httpx2.ConnectError): a network failure, exit 1
    (not invalid input)."""
    pins = (
        (RECIPES / "toolchains.toml")
        .read_text()
        .replace(
            'image = "nvcr.io/nvidia/tensorrt-llm/release:1.1.0"',
            'image = "nvcr.io/nvidia/tensorrt-llm/release:1.1.0"\ndigest = "sha256:' + "ab" * 32 + '"',
        )
    )
    (tmp_path / "toolchains.toml").write_text(pins)
    recipe = write_recipe(tmp_path)
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": str(tmp_path / "hf")}
    r = trtbuild("lock", str(recipe), "--toolchains", str(tmp_path / "toolchains.toml"), env=env)
    plain(r, 1, "cannot reach the Hugging Face Hub for hf://meta-llama/Meta-Llama-3-8B-Instruct@main")
    assert not (tmp_path / "recipe.lock").exists()


def _unprivileged() -> list[str]:
    """A prefix that runs a command without root's permission override (so a 0555 directory is read-only
    even for root, as the tests run in CI), or nothing when not root."""
    if os.geteuid() != 0:
        return []
    import shutil

    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if shutil.which("setpriv") else []


def test_read_only_home_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o555)
    try:
        r = subprocess.run(
            [*_unprivileged(), sys.executable, "-m", "trtbuild", "ls"],
            env={**os.environ, "PYTHONPATH": str(REPO), "TRTBUILD_HOME": str(home)},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        home.chmod(0o755)
    plain(r, 2, f"the trtbuild home {home} (TRTBUILD_HOME) is not writable")
    assert "database is running" not in r.stderr


def test_misconfigured_urls_are_named_and_create_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    r = trtbuild("ls", env={"TRTBUILD_DB_URL": f"sqlite:///{missing}/x.db"})
    plain(r, 2, f"the directory {missing} of the catalog sqlite:///{missing}/x.db does not exist")
    assert not missing.exists()
    r = trtbuild("ls", env={"TRTBUILD_STORE_URL": "garbage"}, cwd=tmp_path)
    plain(r, 2, "store URL 'garbage' is not an absolute directory or a URL", "file:///absolute/dir")
    assert not (tmp_path / "garbage").exists()
    r = trtbuild("ls", env={"TRTBUILD_STORE_URL": f"file://{missing}/store"})
    plain(r, 2, f"the directory {missing} of the store file://{missing}/store does not exist")
    assert not missing.exists()


def _pushed(tmp_path: Path) -> tuple[str, dict[str, str]]:
    env = {"TRTBUILD_HOME": str(tmp_path / "home")}
    src = tmp_path / "artifact"
    src.mkdir()
    (src / "config.json").write_text("{}")
    r = trtbuild("push", str(src), "--name", "e", "--tag", "v1", env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip(), env


def test_registry_input_cases(tmp_path: Path) -> None:
    hash_, env = _pushed(tmp_path)
    plain(trtbuild("ls", "--db-url", "postgres://u@127.0.0.1/x", env=env), 2, "postgresql+psycopg://")
    missing = tmp_path / "missing.json"
    r = trtbuild("push", str(tmp_path / "artifact"), "--name", "e", "--metadata", f"@{missing}", env=env)
    plain(r, 2, f"--metadata @{missing}: cannot read {missing}: No such file or directory")
    plain(trtbuild("tag", "sha256:" + "9" * 64, "e:typo", env=env), 1, "no artifact sha256:999")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    plain(trtbuild("pull", hash_, str(a_file / "sub"), env=env), 2, f"{a_file} is a file, not a directory")
    plain(trtbuild("pull", hash_, "/proc/trtbuild-dest", env=env), 2, "cannot pull into /proc/trtbuild-dest")

"""trtbuild.settings owns every TRTBUILD_* setting and the cache tree; the registry reads no environment and
trtbuild reaches it only through registry.api."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from trtbuild import settings

REPO = Path(__file__).resolve().parents[1]
READS_ENV = re.compile(r"""(environ(\.get)?\s*[\(\[]|getenv\(|envvar=)\s*["']TRTBUILD_""")
# The in-container quantize driver reads its TRTBUILD_QUANT_* values itself (it imports only their names
# from settings); cli.py imports the registry's error base class (owned by the CLI's error handling).
DRIVER_OPTIONS = REPO / "trtbuild" / "quantize" / "options.py"
NON_API_IMPORTS = {("trtbuild/cli.py", "registry.errors")}


def _sources(*packages: str) -> list[Path]:
    return [p for pkg in packages for p in sorted((REPO / pkg).rglob("*.py"))]


def test_only_settings_reads_trtbuild_variables() -> None:
    readers = [
        str(p.relative_to(REPO))
        for p in _sources("trtbuild", "registry")
        if READS_ENV.search(p.read_text()) and p not in (REPO / "trtbuild" / "settings.py", DRIVER_OPTIONS)
    ]
    assert readers == []


def test_the_registry_reads_no_environment_but_the_aws_standard() -> None:
    for path in _sources("registry"):
        for match in re.finditer(r"os\.environ[^\n]*", path.read_text()):
            assert "AWS_" in match.group(0), f"{path}: {match.group(0)}"


def test_trtbuild_reaches_the_registry_only_through_its_api() -> None:
    found = set()
    for path in _sources("trtbuild"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.split(".")[0] == "registry" and name != "registry.api":
                    found.add((str(path.relative_to(REPO)), name))
    assert found == NON_API_IMPORTS


def test_readme_documents_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"^\| `(TRTBUILD_[A-Z0-9_]+)` \|", readme, flags=re.M))
    assert documented == {s.name for s in settings.SETTINGS}
    for s in settings.SETTINGS:
        assert f"| `{s.name}` | {s.default} | {s.meaning} |" in readme, s.name


def test_defaults_live_in_the_cache_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTBUILD_HOME", str(tmp_path / "home"))
    for name in ("TRTBUILD_DB_URL", "TRTBUILD_STORE_URL", "TRTBUILD_HASH_CACHE", "TRTBUILD_S3_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert settings.db_url() == f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
    assert settings.store_url() == f"file://{tmp_path / 'home' / 'store'}"
    assert settings.db_url("sqlite:////x.db") == "sqlite:////x.db"  # a flag wins
    assert settings.work_root() == tmp_path / "home" / "work"
    assert settings.hash_cache_path() == tmp_path / "home" / "hashcache.db"
    monkeypatch.setenv("TRTBUILD_HASH_CACHE", "0")
    monkeypatch.setenv("TRTBUILD_S3_THREADS", "3")
    monkeypatch.setenv("TRTBUILD_LOCAL_FSYNC", "0")
    assert settings.hash_cache_path() is None
    tuning = settings.store_tuning()
    assert tuning.s3_threads == 3 and tuning.local_fsync is False and tuning.s3_staged_push is True
    monkeypatch.delenv("TRTBUILD_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings.cache_home() == tmp_path / "xdg" / "trtbuild"


def test_open_registry_uses_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTBUILD_DB_URL", f"sqlite:///{tmp_path / 'cat.db'}")
    monkeypatch.setenv("TRTBUILD_STORE_URL", f"file://{tmp_path / 'blobs'}")
    monkeypatch.setenv("TRTBUILD_LOCAL_FSYNC", "0")
    reg = settings.open_registry()
    try:
        assert reg.store.url == f"file://{tmp_path / 'blobs'}" and reg.store.fsync is False
        assert (tmp_path / "cat.db").is_file()
        assert (
            reg.check().describe()
            == f"catalog sqlite:///{tmp_path / 'cat.db'} (0 artifacts), store {reg.store.url}"
        )
    finally:
        reg.close()

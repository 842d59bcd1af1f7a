"""Shared pytest fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"

# A Llama-3-8B-shaped config.json (no weights): enough for every shape rule in the validator.
LLAMA8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 32,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_scaling": None,
    "torch_dtype": "bfloat16",
}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own trtbuild cache and registry."""
    home = tmp_path_factory.mktemp("trtbuild-home")
    monkeypatch.setenv("TRTBUILD_HOME", str(home))
    monkeypatch.delenv("TRTBUILD_DB_URL", raising=False)
    monkeypatch.delenv("TRTBUILD_STORE_URL", raising=False)
    return home


@pytest.fixture
def llama_config_dir(tmp_path) -> Path:
    d = tmp_path / "llama8b-config"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(LLAMA8B_CONFIG))
    return d


def pytest_sessionfinish(session, exitstatus):
    """Remove the serving-image test tags of this session (trtbuild-test/bake:*-<session>), whichever
    directory's tests made them (tests/bake and tests/builder both bake)."""
    import sys

    bake = sys.modules.get("tests.bake.conftest")
    if bake is None:
        return
    try:
        import docker

        client = docker.from_env()
        tags = [
            t for image in client.images.list(name=bake.TEST_REPO) for t in image.tags if bake.SESSION in t
        ]
        for tag in sorted(tags, key=lambda t: ":base-" in t):  # children first
            client.images.remove(tag, force=True)
    except Exception:  # noqa: BLE001 - cleanup must not turn a green run red
        pass

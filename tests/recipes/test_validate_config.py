"""validate says which checks it could not run and why (the model's config.json not at hand), and with
--fetch-config downloads only the config files of the pinned revision (from a Hub stand-in on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LLAMA8B_CONFIG, REPO
from tests.hub_standin import hub_standin
from tests.recipes.helpers import write_recipe

REPO_ID = "meta-llama/Meta-Llama-3-8B-Instruct"
COMMIT = "5f0b02c75b57c5855da9ae460ce51323ea669d8a"
# tp = 3 does not divide the 32 heads; max_seq_len beyond 8192 positions: both need config.json to see
BAD_FOR_THE_MODEL = {"parallelism.tp": 3, "limits.max_seq_len": 131072, "limits.max_input_len": 1024}


@pytest.fixture
def hf_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return env | {"HF_HUB_CACHE": str(tmp_path / "hf-cache"), "PYTHONPATH": str(REPO)}


def validate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trtbuild", "validate", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_validate_names_the_checks_it_could_not_run(tmp_path: Path, hf_env: dict[str, str]) -> None:
    recipe = write_recipe(tmp_path, {"model.revision": COMMIT, **BAD_FOR_THE_MODEL})
    r = validate(str(recipe), "--json", env=hf_env)
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout)
    (not_run,) = result["not_run"]
    assert "attention heads" in not_run["checks"] and "max_seq_len" in not_run["checks"]
    assert "not in the Hugging Face cache" in not_run["why"] and "--fetch-config" in not_run["why"]
    r = validate(str(recipe), env=hf_env)
    assert "not checked:" in r.stdout and "because config.json of hf://" in " ".join(r.stdout.split())


def test_fetch_config_downloads_only_the_config_of_the_pinned_commit(
    tmp_path: Path, hf_env: dict[str, str]
) -> None:
    recipe = write_recipe(tmp_path, {"model.revision": COMMIT, **BAD_FOR_THE_MODEL})
    config = json.dumps(LLAMA8B_CONFIG).encode()
    with hub_standin(REPO_ID, COMMIT, {"config.json": config}) as (endpoint, requested):
        r = validate(str(recipe), "--fetch-config", "--json", env=hf_env | {"HF_ENDPOINT": endpoint})
    assert r.returncode == 2, r.stdout + r.stderr  # the model checks ran, and failed
    fields = {p["field"] for p in json.loads(r.stdout)[0]["problems"]}
    assert {"parallelism.tp", "limits.max_seq_len"} <= fields
    resolved = [p for p in requested if "/resolve/" in p]
    assert resolved and all(p.endswith(f"/resolve/{COMMIT}/config.json") for p in resolved)
    r = validate(str(recipe), "--json", env=hf_env)  # now cached: no network needed
    assert r.returncode == 2


def test_fetch_config_uses_the_lock_and_refuses_a_floating_revision(
    tmp_path: Path, hf_env: dict[str, str]
) -> None:
    recipe = write_recipe(tmp_path, {"model.revision": "main"})
    r = validate(str(recipe), "--fetch-config", env=hf_env)
    assert r.returncode == 2 and "not a commit and no lock pins it" in r.stdout, r.stderr
    lock = {"model_source": f"hf://{REPO_ID}", "requested_revision": "main", "revision": COMMIT}
    (tmp_path / "recipe.lock").write_text("".join(f'{k} = "{v}"\n' for k, v in lock.items()))
    with hub_standin(REPO_ID, COMMIT, {"config.json": json.dumps(LLAMA8B_CONFIG).encode()}) as (endpoint, _):
        r = validate(str(recipe), "--fetch-config", "--json", env=hf_env | {"HF_ENDPOINT": endpoint})
    assert r.returncode == 0, r.stdout + r.stderr
    (result,) = json.loads(r.stdout)
    assert result["not_run"] == [] and result["model_config"].endswith("config.json")

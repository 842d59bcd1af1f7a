"""Lock files: floating references resolved to pins; stale and missing locks refused with --locked."""

from __future__ import annotations

import pytest

from tests.recipes.helpers import write_recipe
from trtbuild.build.plan import plan_recipe
from trtbuild.errors import LockError
from trtbuild.recipe.load import load_recipe
from trtbuild.recipe.lock import lock_path_for, lock_recipe, read_lock

IMAGE_DIGEST = "sha256:" + "ab" * 32
COMMIT = "c0ffee" + "0" * 34


def _resolvers(calls: list):
    def image(ref: str) -> str:
        calls.append(("image", ref))
        return IMAGE_DIGEST

    def revision(repo: str, rev: str | None) -> str:
        calls.append(("revision", repo, rev))
        return COMMIT

    return {"image_resolver": image, "revision_resolver": revision}


def test_lock_pins_image_and_revision(tmp_path):
    recipe = write_recipe(tmp_path)
    calls: list = []
    lock, path = lock_recipe(load_recipe(recipe), **_resolvers(calls))
    assert path == lock_path_for(recipe) == tmp_path / "recipe.lock"
    assert calls == [
        ("image", "nvcr.io/nvidia/tensorrt-llm/release:1.1.0"),
        ("revision", "meta-llama/Meta-Llama-3-8B-Instruct", "main"),
    ]
    assert read_lock(load_recipe(recipe)) == lock
    plan = plan_recipe(recipe, locked=True)
    assert plan.pins.image == f"nvcr.io/nvidia/tensorrt-llm/release@{IMAGE_DIGEST}"
    assert plan.pins.revision == COMMIT and plan.pins.floating == []
    assert plan.step("build").image == plan.pins.image


def test_lock_changes_keys_from_floating_to_pinned(tmp_path):
    recipe = write_recipe(tmp_path)
    floating = plan_recipe(recipe).engine_key
    lock_recipe(load_recipe(recipe), **_resolvers([]))
    assert plan_recipe(recipe).engine_key != floating


def test_locked_refuses_missing_lock(tmp_path):
    recipe = write_recipe(tmp_path)
    with pytest.raises(LockError, match="no lock file"):
        plan_recipe(recipe, locked=True)


def test_locked_refuses_stale_lock_and_unlocked_ignores_it(tmp_path):
    recipe = write_recipe(tmp_path)
    lock_recipe(load_recipe(recipe), **_resolvers([]))
    write_recipe(tmp_path, {"target.toolchain": "trtllm-1.0.0"})  # same path, new toolchain
    with pytest.raises(LockError, match="stale"):
        plan_recipe(recipe, locked=True)
    plan = plan_recipe(recipe)
    assert plan.pins.lock_state == "stale" and len(plan.pins.floating) == 2


def test_changing_limits_keeps_lock_fresh(tmp_path):
    recipe = write_recipe(tmp_path)
    lock_recipe(load_recipe(recipe), **_resolvers([]))
    write_recipe(tmp_path, {"limits.max_batch_size": 32})
    assert plan_recipe(recipe, locked=True).pins.lock_state == "fresh"


def test_commit_revision_is_not_resolved(tmp_path):
    recipe = write_recipe(tmp_path, {"model.revision": COMMIT})
    calls: list = []
    lock, _ = lock_recipe(load_recipe(recipe), **_resolvers(calls))
    assert [c[0] for c in calls] == ["image"] and lock.revision == COMMIT


def test_malformed_lock_is_an_input_error(tmp_path):
    recipe = write_recipe(tmp_path)
    lock_path_for(recipe).write_text("version = 1\nimage_digest = 'sha256:zz'\n")
    with pytest.raises(LockError, match="not a valid lock file"):
        plan_recipe(recipe)


def test_unreachable_docker_is_a_plain_lock_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    recipe = write_recipe(tmp_path, {"model.revision": COMMIT})
    with pytest.raises(LockError, match="cannot reach the Docker Engine"):
        lock_recipe(load_recipe(recipe))

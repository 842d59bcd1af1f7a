"""Hand-edited lock files and fuzzed recipes: every one is either accepted (and then sound) or refused as
invalid input naming the file and field — never a traceback, never an invalid lock taken as fresh."""

from __future__ import annotations

import copy
import random
import tomllib
from pathlib import Path

import pytest
import tomli_w

from tests.recipes.helpers import recipe_dict, write_recipe
from tests.reliability.conftest import trials
from trtbuild.build.plan import plan_recipe
from trtbuild.errors import LockError, RecipeError
from trtbuild.recipe.load import load_recipe
from trtbuild.recipe.lock import lock_path_for, lock_recipe, read_lock
from trtbuild.recipe.model_config import SHA_RE
from trtbuild.recipe.toolchain import DIGEST_RE

IMAGE_DIGEST = "sha256:" + "ab" * 32
COMMIT = "c0ffee" + "0" * 34


def _locked(tmp_path: Path) -> tuple[Path, dict]:
    recipe = write_recipe(tmp_path)
    lock_recipe(
        load_recipe(recipe), image_resolver=lambda _ref: IMAGE_DIGEST, revision_resolver=lambda _r, _v: COMMIT
    )
    return recipe, tomllib.loads(lock_path_for(recipe).read_text())


EDITS = {
    "digest-int": ("image_digest", 5),
    "digest-table": ("image_digest", {"a": 1}),
    "digest-list": ("image_digest", ["sha256:" + "ab" * 32]),
    "digest-newline": ("image_digest", IMAGE_DIGEST + "\n"),
    "digest-short": ("image_digest", "sha256:abc"),
    "digest-upper": ("image_digest", "sha256:" + "AB" * 32),
    "inputs-int": ("inputs_digest", 1),
    "inputs-newline": ("inputs_digest", None),  # filled below: the real one + "\n"
    "revision-main": ("revision", "main"),
    "revision-huge": ("revision", "a" * 10_000_000),
    "revision-shell": ("revision", "$(rm -rf ~); echo"),
    "revision-int": ("revision", 40),
    "revision-newline": ("revision", COMMIT + "\n"),
    "revision-short-sha": ("revision", COMMIT[:12]),
    "toolchain-other": ("toolchain", "trtllm-1.0.0"),
    "image-other": ("image", "evil.example.com/x:latest"),
    "source-other": ("model_source", "hf://evil/model"),
    "requested-other": ("requested_revision", "dev"),
    "locked-at-bad": ("locked_at", "yesterday"),
    "locked-at-int": ("locked_at", 5),
    "version-2": ("version", 2),
    "version-str": ("version", "1"),
    "version-bool": ("version", True),
    "unknown-key": ("extra", "x"),
    "missing-digest": ("image_digest", ...),
    "missing-version": ("version", ...),
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_hand_edited_lock_is_invalid_input(tmp_path: Path, case: str) -> None:
    recipe, data = _locked(tmp_path)
    key, value = EDITS[case]
    if case == "inputs-newline":
        value = data["inputs_digest"] + "\n"
    if value is ...:
        del data[key]
    else:
        data[key] = value
    lock_path_for(recipe).write_text(tomli_w.dumps(data))
    field = {"revision-huge": r"\(file\)"}.get(case, key)
    with pytest.raises(LockError, match=f"not a valid lock file: {field}"):
        plan_recipe(recipe, locked=True)


@pytest.mark.parametrize(
    "text",
    ["a = " + "[" * 5000 + "]" * 5000, "\x00\xff", "version = 1\nversion = 1"],
    ids=["deep-arrays", "binary", "duplicate-key"],
)
def test_unparsable_lock_is_invalid_input(tmp_path: Path, text: str) -> None:
    recipe = write_recipe(tmp_path)
    lock_path_for(recipe).write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(LockError, match="not a valid lock file"):
        plan_recipe(recipe, locked=True)


def test_lock_path_that_is_a_directory(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    lock_path_for(recipe).mkdir()
    with pytest.raises(LockError, match="not a regular file"):
        plan_recipe(recipe)


def test_valid_lock_is_still_fresh(tmp_path: Path) -> None:
    recipe, _ = _locked(tmp_path)
    assert plan_recipe(recipe, locked=True).pins.lock_state == "fresh"


FUZZ_VALUES = [
    0,
    -1,
    2**62,
    1.5,
    True,
    "",
    "main",
    "x" * 5000,
    "a\nb",
    "\u00e9",
    [],
    [1, "a"],
    {},
    {"a": {"b": 1}},
    IMAGE_DIGEST,
    COMMIT,
    "sha256:" + "0" * 64,
]


def test_fuzzed_lock_files(tmp_path: Path) -> None:
    rng = random.Random(11)
    recipe, base = _locked(tmp_path)
    accepted = refused = 0
    for _ in range(trials(150)):
        data = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            data[rng.choice([*base, "extra"])] = rng.choice(FUZZ_VALUES)
        lock_path_for(recipe).write_text(tomli_w.dumps(data))
        try:
            lock = read_lock(load_recipe(recipe))
        except LockError:
            refused += 1
            continue
        accepted += 1
        assert lock is not None and DIGEST_RE.match(lock.image_digest)
        assert lock.revision and SHA_RE.match(lock.revision)  # the recipe is hf://: a commit sha
    print(f"fuzzed locks: {accepted} accepted (all sound), {refused} refused")


RECIPE_VALUES = [
    0,
    -1,
    2**70,
    1.5,
    float("inf"),
    True,
    "",
    "x" * 100_000,
    "~nosuchuser/x.jsonl",
    "file:///etc/passwd",
    "a\nb",
    "\u00e9",
    [],
    [1, "a"],
    {},
    {"a": {"b": 1}},
    "../../etc/passwd",
    "a/" * 3000 + "x.jsonl",
    "/dev/null",
    "/etc",
    "s3://b/p",
    "hf://a/b",
    "deadbeef00",
]


def _leaves(d: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for k, v in d.items():
        out += _leaves(v, (*prefix, k)) if isinstance(v, dict) else [(*prefix, k)]
    return out


def test_fuzzed_recipes(tmp_path: Path) -> None:
    rng = random.Random(5)
    base = recipe_dict({"quantization.calibration": {"dataset": "builtin"}})
    paths = [*_leaves(base), ("model", "architecture"), ("build", "extra_args"), ("extra",)]
    ok = refused = 0
    for i in range(trials(300)):
        data = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            *parents, leaf = rng.choice(paths)
            node = data
            for part in parents:
                node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
            node[leaf] = rng.choice(RECIPE_VALUES)
        path = tmp_path / f"r{i}.toml"
        path.write_text(tomli_w.dumps(data))
        try:
            load_recipe(path)
            ok += 1
        except RecipeError as exc:
            assert str(path) in str(exc)
            refused += 1
    for i, text in enumerate(["a = " + "[" * 3000 + "]" * 3000, "x = " + "{a = " * 3000 + "1" + "}" * 3000]):
        path = tmp_path / f"deep{i}.toml"
        path.write_text(text)
        with pytest.raises(RecipeError, match="nested too deeply|not valid TOML"):
            load_recipe(path)
    print(f"fuzzed recipes: {ok} valid, {refused} refused with a RecipeError")

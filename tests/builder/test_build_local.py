"""The whole build in process, in seconds: ``build_recipe`` with the LocalRunner, the toolchain double's
tools run as local subprocesses (no Docker), a LocalStore + SQLite registry.

full build -> cache hit -> a shapes-only change reruns only the engine build (reading the timing cache the
first build published) -> what is published is exactly the typed contract: every field written, the
catalog columns filled, the serving image labelled with the recipe digest and the publish time.
The Docker end-to-end tests (test_build_e2e.py) cover the same flow through real containers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from registry.api import (
    BuildFacts,
    CheckpointMetadata,
    EngineMetadata,
    Registry,
    TimingCacheMetadata,
)
from tests.toolchain_double.fixture import DOUBLE_SRC, make_tiny_llama
from trtbuild.build.orchestrator import BuildOptions, build_recipe
from trtbuild.build.plan import plan_recipe
from trtbuild.build.provenance import engine_identity, recipe_digest

REPO = Path(__file__).resolve().parents[2]
IMAGE = "127.0.0.1:5000/trtbuild-test/toolchain-double@sha256:" + "d" * 64  # recorded, never run
TOOLS = {"trtllm-build": "build", "nvidia-smi": "nvidia_smi", "convert_checkpoint.py": "convert"}


@pytest.fixture(scope="module")
def double_tools(tmp_path_factory) -> Path:
    """The double's trtllm-build, nvidia-smi and convert_checkpoint.py as host executables, and its data
    (cli_spec.json, VERSION) under TOOLCHAIN_DOUBLE_ROOT."""
    root = tmp_path_factory.mktemp("double")
    (root / "bin").mkdir()
    shutil.copy(REPO / "trtbuild" / "data" / "cli_specs" / "1.1.json", root / "cli_spec.json")
    (root / "VERSION").write_text("1.1.0\n")
    for tool, module in TOOLS.items():
        path = root / "bin" / tool
        path.write_text(
            f"#!{sys.executable}\n# TOOLCHAIN DOUBLE (test stand-in)\nimport sys\n"
            f"sys.path.insert(0, {str(DOUBLE_SRC)!r})\nfrom trtllm_double.{module} import main\n"
            "sys.exit(main())\n"
        )
        path.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    model = make_tiny_llama(tmp_path_factory.mktemp("model") / "tiny-llama")
    (model / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE"}}')
    (model / "tokenizer_config.json").write_text('{"bos_token": "<s>"}')
    return model


@pytest.fixture
def local_build(double_tools: Path, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """(write_recipe(max_batch_size) -> path, build(recipe) -> BuildResult, registry)."""
    monkeypatch.setenv("PATH", f"{double_tools / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("TOOLCHAIN_DOUBLE_ROOT", str(double_tools))
    toolchains = tmp_path / "toolchains.toml"
    toolchains.write_text(
        f"""# TEST toolchain: the toolchain double's tools on the host, never NVIDIA's.
[toolchain."double-1.1.0"]
trtllm_version = "1.1.0"
image = "{IMAGE}"
tensorrt_version = "0.0.0+double"
cuda_version = "12.2"
modelopt_version = "0.0.0+double"
supported_archs = ["sm90"]
cli_spec = "1.1"
trtllm_build = ["{double_tools / "bin" / "trtllm-build"}"]
python = "{sys.executable}"
convert_scripts = {{ LlamaForCausalLM = "{double_tools / "bin" / "convert_checkpoint.py"}" }}
"""
    )
    recipe = tmp_path / "tiny.toml"

    def write_recipe(max_batch_size: int) -> Path:
        recipe.write_text(f"""name = "tiny-llama-local"
[model]
source = "file://{tiny_model}"
dtype = "float16"
[parallelism]
tp = 2
[limits]
max_batch_size = {max_batch_size}
max_input_len = 64
max_seq_len = 128
max_num_tokens = 256
[target]
gpu_arch = "sm90"
toolchain = "double-1.1.0"
""")
        return recipe

    from trtbuild.settings import open_registry

    registry = open_registry()
    options = BuildOptions(runner="local", gpus=0, toolchains_path=toolchains, poll_s=0.1)
    yield write_recipe, lambda path: build_recipe(path, options, registry=registry), registry
    registry.close()


def test_build_hit_shapes_only_and_the_published_contract(local_build, tmp_path):
    write_recipe, build, reg = local_build
    recipe = write_recipe(max_batch_size=4)
    first = build(recipe)
    assert first.cache_hit is False
    assert first.steps_run == ["convert", "build", "verify", "publish"]

    again = build(recipe)
    assert again.cache_hit is True and again.steps_run == [] and again.artifact.hash == first.artifact.hash

    recipe = write_recipe(max_batch_size=8)
    third = build(recipe)
    assert third.plan.checkpoint_key == first.plan.checkpoint_key
    assert third.plan.engine_key != first.plan.engine_key
    assert third.steps_run == ["build", "verify", "publish"], "only the engine build reruns"
    build_log = (third.plan.dirs.logs / "build.log").read_text()
    assert "--input_timing_cache" in build_log, "the second engine build starts from the published cache"

    _check_engine_contract(reg, third, tmp_path)
    _check_checkpoint_and_timing_cache(reg, third)


def _check_engine_contract(reg: Registry, result, tmp_path: Path) -> None:
    art = reg.get(result.artifact.hash)
    meta = art.metadata
    assert isinstance(meta, EngineMetadata) and meta == engine_identity(result.plan)
    unset = [f.name for f in dataclasses.fields(meta) if f.name != "extra" and getattr(meta, f.name) is None]
    assert unset == [], f"the builder leaves contract fields unwritten: {unset}"
    assert meta.recipe_digest == recipe_digest(result.plan.recipe) and meta.recipe_digest.startswith(
        "sha256:"
    )
    assert (meta.build_key, meta.max_batch_size, meta.tp) == (result.plan.engine_key, 8, 2)
    facts = art.provenance
    assert isinstance(facts, BuildFacts) and facts.verification and facts.verification["ok"] is True
    assert (
        facts.build_seconds and facts.build_seconds > 0 and facts.checkpoint_key == result.plan.checkpoint_key
    )
    assert facts.steps_run == ["build", "verify"] and facts.gpu_name == "NVIDIA H100 80GB HBM3"
    row = reg.catalog.get_row(art.hash)  # the catalog columns are the contract's
    for name, value in art.columns.items():
        assert getattr(row, name) == value, name
    assert row.recipe_digest == meta.recipe_digest

    dest = tmp_path / "pulled"
    reg.pull(art.hash, dest)
    assert json.loads((dest / "config.json").read_text())["build_config"]["max_batch_size"] == 8
    assert json.loads((dest / "trtbuild" / "verify.json").read_text())["ok"] is True

    from trtbuild.bake import BakeRequest, prepare

    baked = prepare(
        BakeRequest(
            engine_dir=dest,
            metadata=meta,
            template="trtllm-serve",
            artifact_hash=art.hash,
            artifact_name=art.name,
            created_at=art.created_at,
            check_base=False,
        ),
        tmp_path / "ctx",
    )
    assert baked.labels["ai.trtbuild.recipe_digest"] == meta.recipe_digest
    assert baked.labels["org.opencontainers.image.created"] == art.created_at.isoformat()
    assert baked.base_image == IMAGE, "trtllm-serve bakes FROM the release image that built the engine"


def _check_checkpoint_and_timing_cache(reg: Registry, result) -> None:
    ckpt = reg.find_by_build_key(result.plan.checkpoint_key, "checkpoint")
    assert ckpt is not None and isinstance(ckpt.metadata, CheckpointMetadata)
    assert ckpt.metadata.recipe_digest and not hasattr(ckpt.metadata, "max_batch_size")
    assert ckpt.provenance.fingerprint and ckpt.provenance.host
    caches = reg.list(kind="timing-cache")
    assert len(caches) >= 1 and all(isinstance(c.metadata, TimingCacheMetadata) for c in caches)
    assert caches[0].metadata.gpu_arch == "sm90"


def test_recipe_digest_ignores_layout_and_follows_content(local_build, tmp_path):
    write_recipe, _build, _reg = local_build
    path = write_recipe(max_batch_size=4)
    before = recipe_digest(plan_recipe(path, toolchains_path=tmp_path / "toolchains.toml").recipe)
    path.write_text("# a comment\n" + path.read_text().replace("tp = 2", "tp   =   2"))
    assert recipe_digest(plan_recipe(path, toolchains_path=tmp_path / "toolchains.toml").recipe) == before
    write_recipe(max_batch_size=5)
    assert recipe_digest(plan_recipe(path, toolchains_path=tmp_path / "toolchains.toml").recipe) != before


def test_engines_sharing_a_checkpoint_make_it_once(local_build, tmp_path):
    """Two builds of different engines over one checkpoint, at once: one makes the checkpoint under its
    lease, the other waits and reuses it (before, both converted into the one work directory)."""
    import threading

    from trtbuild.settings import open_registry

    write_recipe, _, _ = local_build
    recipes = []
    for batch in (2, 3):
        path = tmp_path / f"b{batch}.toml"
        path.write_text(write_recipe(batch).read_text().replace("tiny-llama-local", f"tiny-b{batch}"))
        recipes.append(path)
    toolchains = tmp_path / "toolchains.toml"
    results: dict[int, object] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def build(i: int) -> None:
        registry = open_registry()  # one catalog connection per builder, as two processes would have
        try:
            start.wait()
            options = BuildOptions(runner="local", gpus=0, toolchains_path=toolchains, poll_s=0.05)
            results[i] = build_recipe(recipes[i], options, registry=registry)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            registry.close()

    threads = [threading.Thread(target=build, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    runs = [r.steps_run for r in results.values()]  # type: ignore[attr-defined]
    assert sum("convert" in steps for steps in runs) == 1, runs
    assert all("build" in steps for steps in runs), runs
    engines = [r.artifact for r in results.values()]  # type: ignore[attr-defined]
    assert engines[0].hash != engines[1].hash
    assert len(local_build[2].list(kind="checkpoint")) == 1

"""The build plan: ordered steps, each with its exact argv, image, mounts and a content key.

A content key is the sha256 of the canonical JSON of (step kind, step version, parameters, input keys,
toolchain identity). Keys therefore ignore TOML formatting, comments and key order, and change with every
field that changes the bytes a step produces. The checkpoint key (quantize or convert) does not see
limits or build switches; the engine key does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trtbuild
from registry.api import digest_of, hash_file
from trtbuild.build.fetch import local_tree_digest
from trtbuild.build.verify import Prediction, expectations, planned_checkpoint, predict
from trtbuild.errors import InputError, LockError
from trtbuild.recipe import cli_spec
from trtbuild.recipe.checks import resolve_dataset
from trtbuild.recipe.load import LoadedRecipe, load_recipe
from trtbuild.recipe.lock import Lock, is_fresh, lock_path_for, read_lock
from trtbuild.recipe.model_config import SHA_RE
from trtbuild.recipe.schema import Recipe, build_switch_flags
from trtbuild.recipe.toolchain import load_toolchains
from trtbuild.runner.base import Mount
from trtbuild.settings import torch_extensions_dir, work_root

# Bump a step's version whenever its implementation changes the bytes it produces.
STEP_VERSIONS = {
    "fetch": 1,
    "quantize": 1,
    "convert": 1,
    "build": 1,
    "verify": 2,
    "publish": 1,
    "package": 1,
    "serve_config": 1,
}  # the last two: backend = "pytorch" (build/plan_pytorch.py)

# Paths inside the toolchain container.
C_MODEL = "/trtbuild/model"
C_CHECKPOINT = "/trtbuild/checkpoint"
C_ENGINE = "/trtbuild/engine"
C_CACHE = "/trtbuild/cache"
C_CALIB = "/trtbuild/calib"
C_SRC = "/trtbuild/src"
C_TORCH_EXT = "/trtbuild/torch-extensions"  # ModelOpt's compiled CUDA extensions, kept between builds
TIMING_CACHE = "timing.cache"
# Files fetched from a Hugging Face repo: weights, configs and tokenizer.
HF_ALLOW_PATTERNS = ("*.safetensors", "*.json", "tokenizer.model", "*.tiktoken", "*.txt")
QUANTIZE_SEED = 1234


@dataclass(frozen=True)
class Step:
    name: str
    kind: str
    key: str
    image: str | None
    argv: list[str] | None
    mounts: list[Mount]
    params: dict
    inputs: list[str]
    gpus: int = 0
    env: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "key": self.key,
            "image": self.image,
            "argv": self.argv,
            "mounts": [m.to_dict() for m in self.mounts],
            "gpus": self.gpus,
            "env": self.env,
            "inputs": self.inputs,
        }


@dataclass(frozen=True)
class Pins:
    """What the plan is pinned to, and what is still floating."""

    image: str  # repo@sha256:... when pinned, else the tag
    image_pinned: bool
    revision: str | None  # commit sha / listing digest when pinned
    revision_pinned: bool
    lock_state: str  # "none", "fresh", "stale"

    @property
    def floating(self) -> list[str]:
        out = []
        if not self.image_pinned:
            out.append(f"toolchain image {self.image} is a tag, not a digest")
        if not self.revision_pinned:
            out.append(f"model revision {self.revision or '(default branch)'} is not a commit")
        return out

    @property
    def toolchain_id(self) -> str:
        """What the content keys of container steps name as their toolchain: the pinned image, or the tag
        marked unpinned (so a later pin changes the keys)."""
        return self.image if self.image_pinned else f"unpinned:{self.image}"


@dataclass(frozen=True)
class Plan:
    recipe: LoadedRecipe
    pins: Pins
    dirs: WorkDirs
    steps: list[Step]
    checkpoint_key: str
    engine_key: str

    backend = "engine"
    artifact_kind = "engine"  # what the plan publishes last (the artifact `build` returns)

    @property
    def artifact_key(self) -> str:
        return self.engine_key

    def step(self, kind: str) -> Step:
        return next(s for s in self.steps if s.kind == kind)

    @property
    def engine_prediction(self) -> Prediction:
        """The limits and switches trtllm-build will save, from the model's config.json when at hand."""
        facts = self.recipe.facts
        expect = self.step("verify").params["expect"]
        ckpt = planned_checkpoint(expect, facts.raw if facts else None)
        return predict(expect, ckpt, checkpoint_known=facts is not None)

    @property
    def checkpoint_step(self) -> Step:
        return next(s for s in self.steps if s.kind in ("quantize", "convert"))

    def to_dict(self) -> dict:
        return {
            "recipe": str(self.recipe.path),
            "name": self.recipe.recipe.name,
            "toolchain": self.recipe.toolchain.name,
            "image": self.pins.image,
            "pinned": not self.pins.floating,
            "floating": self.pins.floating,
            "lock": self.pins.lock_state,
            "checkpoint_key": self.checkpoint_key,
            "engine_key": self.engine_key,
            "engine_limits": self.engine_prediction.limits.to_dict(),
            "builder_changes": [c.to_dict() for c in self.engine_prediction.changes],
            "steps": [s.to_dict() for s in self.steps],
        }


def content_key(kind: str, params: dict, inputs: list[str], toolchain: str | None) -> str:
    return digest_of(
        {
            "kind": kind,
            "version": STEP_VERSIONS[kind],
            "params": params,
            "inputs": inputs,
            "toolchain": toolchain,
        }
    )


def current_pins(loaded: LoadedRecipe, lock: Lock | None) -> Pins:
    tc, model = loaded.toolchain, loaded.recipe.model
    lock_state = "none" if lock is None else ("fresh" if is_fresh(lock, loaded) else "stale")
    usable = lock if lock_state == "fresh" else None
    image = tc.pinned_ref() or (tc.pinned_ref(usable.image_digest) if usable else None)
    if model.scheme == "file":
        revision, rev_pinned = None, True
    elif model.revision and SHA_RE.match(model.revision):
        revision, rev_pinned = model.revision, True
    elif usable and usable.revision:
        revision, rev_pinned = usable.revision, True
    else:
        revision, rev_pinned = model.revision, False
    return Pins(
        image=image or tc.image,
        image_pinned=image is not None,
        revision=revision,
        revision_pinned=rev_pinned,
        lock_state=lock_state,
    )


@dataclass(frozen=True)
class WorkDirs:
    """Where each step writes on the host: one folder per content key (plans sharing a checkpoint share
    it)."""

    model: Path
    checkpoint: Path
    engine: Path
    cache: Path
    logs: Path


def _short(key: str) -> str:
    return key.split(":", 1)[1][:16]


def model_dir(recipe: Recipe, workdir: Path, fetch_key: str) -> Path:
    """Where the fetch step leaves the model: a file:// source in place, else one folder per fetch key."""
    if recipe.model.scheme == "file":
        return Path(recipe.model.location)
    return workdir / "models" / _short(fetch_key)


def make_plan(
    loaded: LoadedRecipe,
    *,
    workdir: Path,
    lock: Lock | None = None,
    source_digest: str | None = None,
    src_root: Path | None = None,
) -> Plan:
    """Plan ``loaded`` with step outputs under ``workdir``.

    ``source_digest`` is the content digest of a file:// model (see trtbuild.build.fetch).
    """
    recipe = loaded.recipe
    pins = current_pins(loaded, lock)
    toolchain_id = pins.toolchain_id
    world = recipe.parallelism.world_size

    # keys first: they never depend on where things are written
    fetch_params = _fetch_params(recipe, pins, source_digest)
    fetch_key = content_key("fetch", fetch_params, [], None)
    kind = "quantize" if recipe.quantization.needs_quantize_step else "convert"
    params, argv, extra_mounts, env = _quantize(loaded, src_root) if kind == "quantize" else _convert(loaded)
    ckpt_key = content_key(kind, params, [fetch_key], toolchain_id)
    build_params, build_argv = _build(loaded)
    build_key = content_key("build", build_params, [ckpt_key], toolchain_id)
    verify_params = {
        "expect": expectations(recipe, loaded.toolchain, loaded.facts, quantized=kind == "quantize")
    }
    verify_key = content_key("verify", verify_params, [build_key], None)

    dirs = WorkDirs(
        model=model_dir(recipe, workdir, fetch_key),
        checkpoint=workdir / "checkpoints" / _short(ckpt_key),
        engine=workdir / "engines" / _short(build_key),
        cache=workdir / "timing-caches" / _short(build_key),
        logs=workdir / "logs" / _short(build_key),
    )
    engine_mount = [Mount(dirs.engine, str(dirs.engine))]
    steps = [
        fetch_step(fetch_key, dirs.model, fetch_params),
        Step(
            kind,
            kind,
            ckpt_key,
            pins.image,
            argv,
            [
                Mount(dirs.model, C_MODEL),
                Mount(dirs.checkpoint, C_CHECKPOINT, False),
                *extra_mounts,
            ],
            params,
            [fetch_key],
            gpus=world,
            env=env,
        ),
        Step(
            "build",
            "build",
            build_key,
            pins.image,
            build_argv,
            [
                Mount(dirs.checkpoint, C_CHECKPOINT),
                Mount(dirs.engine, C_ENGINE, False),
                Mount(dirs.cache, C_CACHE, False),
            ],
            build_params,
            [ckpt_key],
            gpus=world,
        ),
        Step("verify", "verify", verify_key, None, None, engine_mount, verify_params, [build_key]),
        Step(
            "publish",
            "publish",
            content_key("publish", {}, [verify_key], None),
            None,
            None,
            engine_mount,
            {},
            [verify_key],
        ),
    ]
    return Plan(loaded, pins, dirs, steps, ckpt_key, build_key)


def fetch_step(key: str, model_dir: Path, params: dict) -> Step:
    """The first step of both backends: the model into ``model_dir`` (run by trtbuild itself, no image)."""
    return Step("fetch", "fetch", key, None, None, [Mount(model_dir, str(model_dir), False)], params, [])


def _fetch_params(recipe: Recipe, pins: Pins, source_digest: str | None) -> dict:
    model = recipe.model
    if model.scheme == "file":
        if source_digest is None:
            raise InputError(
                f"model.source {model.source}: the local checkpoint's content digest is needed to plan",
                hint="plan through trtbuild.build.plan.plan_recipe, which hashes the directory",
            )
        return {"source": "file", "content": source_digest}
    params: dict[str, Any] = {"source": model.source, "revision": pins.revision}
    if model.scheme == "hf":
        params["allow_patterns"] = list(HF_ALLOW_PATTERNS)
    return params


def _quantize(
    loaded: LoadedRecipe, src_root: Path | None, *, hf: bool = False
) -> tuple[dict, list[str], list[Mount], dict]:
    """trtbuild's ModelOpt driver (``python3 -m trtbuild.quantize``) with quantize.py's flag names.

    ``hf``: the unified Hugging Face checkpoint of the PyTorch backend (``--export_format hf``), which is not
    split by TP/PP: the parallel sizes are neither passed nor part of the key.
    """
    from trtbuild.quantize import QuantizeOptions, build_argv, build_env

    recipe, tc = loaded.recipe, loaded.toolchain
    q, par, cal = recipe.quantization, recipe.parallelism, recipe.quantization.calibration
    mounts = [
        Mount(src_root or Path(trtbuild.__file__).resolve().parent.parent, C_SRC),
        Mount(torch_extensions_dir(), C_TORCH_EXT, read_only=False),
    ]
    if cal.dataset == "builtin":
        dataset_arg, dataset_id = "builtin", "builtin"
    else:
        path = resolve_dataset(cal.dataset, loaded.path.parent).resolve()
        mounts.append(Mount(path, f"{C_CALIB}/{path.name}"))
        dataset_arg, dataset_id = f"{C_CALIB}/{path.name}", "sha256:" + hash_file(path)[0]
    options = QuantizeOptions(
        model_dir=C_MODEL,
        output_dir=C_CHECKPOINT,
        qformat=q.qformat,
        kv_cache_dtype=None if q.kv_cache == "none" else q.kv_cache,
        tp_size=1 if hf else par.tp,
        pp_size=1 if hf else par.pp,
        export_format="hf" if hf else "tensorrt_llm",
        calib_dataset=dataset_arg,
        calib_size=cal.samples,
        batch_size=cal.batch_size,
        calib_max_seq_length=cal.max_seq_len,
        awq_block_size=q.awq_block_size,
        dtype=recipe.model.dtype,
        device=q.device,
        seed=QUANTIZE_SEED,
        min_top1=q.accuracy.min_top1_agreement,
        max_kl=q.accuracy.max_kl_divergence,
        max_gpu_memory_gib=q.max_gpu_memory_gib,
        cpu_offload=q.cpu_offload,
    )
    flags = build_argv(options)
    if hf:  # not a quantize.py run: only the driver's own parser (quantize.py@059c97c1's flag names) reads it
        _ensure_driver_accepts(flags)
    else:
        _ensure_valid(flags, "quantize", tc.spec_family, "quantize")
    # the key: what changes the checkpoint's bytes (not the gate thresholds, which only pass or fail it).
    # CPU offload does: offloaded layers are exported on the CPU, whose rounding of some scales differs
    # from CUDA's by one ulp (bench/quantize_gpu/RESULTS.md), and the GPU budget decides which layers
    # those are; without offload the budget only moves layers between GPUs and stays out of the key.
    params: dict[str, object] = {
        "format": q.format,
        "kv_cache": q.kv_cache,
        "dtype": recipe.model.dtype,
        "tp": par.tp,
        "pp": par.pp,
        "calibration": {
            "samples": cal.samples,
            "batch_size": cal.batch_size,
            "max_seq_len": cal.max_seq_len,
            "dataset": dataset_id,
            "tokenizer_max_seq_length": options.tokenizer_max_seq_length,
        },
        "awq_block_size": q.awq_block_size if q.format == "int4_awq" else None,
        "seed": QUANTIZE_SEED,
        "device": q.device,
    }
    if q.cpu_offload:
        params["cpu_offload"] = {"max_gpu_memory_gib": q.max_gpu_memory_gib}
    if hf:
        params.pop("tp"), params.pop("pp")
        params["export"] = "hf"
    env = {"PYTHONPATH": C_SRC, **build_env(options, torch_extensions_dir=C_TORCH_EXT)}
    return params, [tc.python, "-m", "trtbuild.quantize", *flags], mounts, env


def _convert(loaded: LoadedRecipe) -> tuple[dict, list[str], list[Mount], dict]:
    recipe, tc = loaded.recipe, loaded.toolchain
    arch = (
        recipe.model.architecture
        or (loaded.facts.architecture if loaded.facts else None)
        or "LlamaForCausalLM"
    )
    script = tc.convert_scripts.get(arch)
    if script is None:
        raise InputError(
            f"{loaded.path}: model.architecture: toolchain {tc.name} has no convert script "
            f"recorded for {arch}",
            hint='quantize it instead (quantization.format = "fp8" ...) or add the script to toolchains.toml',
        )
    par = recipe.parallelism
    flags = [
        "--model_dir",
        C_MODEL,
        "--output_dir",
        C_CHECKPOINT,
        "--dtype",
        recipe.model.dtype,
        "--tp_size",
        str(par.tp),
        "--pp_size",
        str(par.pp),
    ]
    _ensure_valid(flags, "convert_checkpoint", tc.spec_family, "convert")
    params = {"architecture": arch, "script": script, "dtype": recipe.model.dtype, "tp": par.tp, "pp": par.pp}
    return params, [tc.python, script, *flags], [], {}


def _build(loaded: LoadedRecipe) -> tuple[dict, list[str]]:
    recipe, tc = loaded.recipe, loaded.toolchain
    lim = recipe.limits
    shape = [
        "--max_batch_size",
        str(lim.max_batch_size),
        "--max_input_len",
        str(lim.max_input_len),
        "--max_num_tokens",
        str(lim.max_num_tokens),
        "--max_beam_width",
        str(lim.max_beam_width),
    ]
    if lim.max_seq_len is not None:
        shape += ["--max_seq_len", str(lim.max_seq_len)]
    shape += build_switch_flags(recipe.build) + list(recipe.build.extra_args)
    # Outside the key: paths, parallel workers and the timing cache change where and how fast, not what.
    flags = [
        "--checkpoint_dir",
        C_CHECKPOINT,
        "--output_dir",
        C_ENGINE,
        *shape,
        "--workers",
        str(recipe.parallelism.world_size),
        "--output_timing_cache",
        f"{C_CACHE}/{TIMING_CACHE}",
    ]
    _ensure_valid(flags, "trtllm-build", tc.spec_family, "build")
    return {"flags": shape, "gpu_arch": recipe.target.gpu_arch}, [*tc.trtllm_build, *flags]


def with_timing_cache(argv: list[str]) -> list[str]:
    """``argv`` of the build step reading the timing cache mounted at C_CACHE."""
    return [*argv, "--input_timing_cache", f"{C_CACHE}/{TIMING_CACHE}"]


def _ensure_valid(flags: list[str], tool: str, family: str, step: str) -> None:
    problems = cli_spec.check_argv(flags, tool, family)
    if problems:  # a planner bug, never a user error: the spec check guards every emitted flag
        raise AssertionError(f"{step} step would pass flags {tool} ({family}) rejects: {problems}")


def _ensure_driver_accepts(flags: list[str]) -> None:
    from trtbuild.quantize.options import ArgvError, parse_argv, validate_options

    try:
        problems = validate_options(parse_argv(flags, env={}))
    except ArgvError as exc:
        problems = [str(exc)]
    if problems:  # a planner bug, never a user error
        raise AssertionError(f"quantize step would pass flags the driver rejects: {problems}")


def plan_recipe(
    recipe_path: Path | str,
    *,
    toolchains_path: Path | None = None,
    locked: bool = False,
    workdir: Path | None = None,
) -> Plan | PytorchPlan:
    """Validate ``recipe_path`` and plan it (hashing a file:// checkpoint by content)."""
    loaded = load_recipe(recipe_path, load_toolchains(toolchains_path))
    lock = read_lock(loaded)
    plan = _plan(loaded, lock, workdir)
    if locked:
        if plan.pins.lock_state == "none":
            raise LockError(
                f"{lock_path_for(loaded.path)}: no lock file (--locked)",
                hint=f"run: trtbuild lock {loaded.path}",
            )
        if plan.pins.lock_state == "stale":
            raise LockError(
                f"{lock_path_for(loaded.path)}: stale: the recipe's toolchain or model changed since "
                "it was locked (--locked)",
                hint=f"run: trtbuild lock {loaded.path}",
            )
    return plan


def _plan(loaded: LoadedRecipe, lock, workdir: Path | None) -> Plan | PytorchPlan:
    model = loaded.recipe.model
    source_digest = None
    if model.scheme == "file":
        source_digest = local_tree_digest(Path(model.location))
    if loaded.backend == "pytorch":
        from trtbuild.build.plan_pytorch import make_pytorch_plan

        return make_pytorch_plan(
            loaded, workdir=workdir or work_root(), lock=lock, source_digest=source_digest
        )
    return make_plan(loaded, workdir=workdir or work_root(), lock=lock, source_digest=source_digest)


if TYPE_CHECKING:
    from trtbuild.build.plan_pytorch import PytorchPlan

"""The plan of a backend = "pytorch" recipe: fetch → quantize (unified HF checkpoint) → verify → publish, then
the serve config.

Keys (sha256 of canonical JSON, as for engines):
- the checkpoint key (``quantize`` with ``--export_format hf``, or ``package`` when nothing is quantized)
  sees the weights, the format, the calibration and the toolchain (ModelOpt's version is in the image), and
  *not* TP/PP, the serve options or the target GPU: one checkpoint serves every TP of its precision family;
- the serve-config key sees the ``[serve]`` table, the LLM-API field list it was checked against, the
  TensorRT-LLM version, the target arch and the checkpoint key. Changing ``[serve]`` changes only this key,
  so it never re-runs the quantization.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trtbuild.build.plan import (
    C_CHECKPOINT,
    C_MODEL,
    HF_ALLOW_PATTERNS,
    Pins,
    Step,
    _fetch_params,
    _quantize,
    _short,
    content_key,
    current_pins,
    fetch_step,
    model_dir,
)
from trtbuild.quantize.formats import EXPECTED_KV_ALGO, EXPECTED_QUANT_ALGO
from trtbuild.recipe.llmapi_spec import source
from trtbuild.recipe.load import LoadedRecipe
from trtbuild.recipe.lock import Lock
from trtbuild.recipe.pytorch_checks import serve_world
from trtbuild.runner.base import Mount

CHECKPOINT_KIND = "hf-checkpoint"
SERVE_CONFIG_KIND = "serve-config"


@dataclass(frozen=True)
class PytorchDirs:
    """Host folders of the steps, one per content key."""

    model: Path
    checkpoint: Path
    serve: Path
    logs: Path


@dataclass(frozen=True)
class PytorchPlan:
    recipe: LoadedRecipe
    pins: Pins
    dirs: PytorchDirs
    steps: list[Step]
    checkpoint_key: str
    serve_config_key: str

    backend = "pytorch"
    artifact_kind = SERVE_CONFIG_KIND

    @property
    def artifact_key(self) -> str:
        return self.serve_config_key

    def step(self, name: str) -> Step:
        """The step called ``name``: fetch, quantize|package, verify, publish-checkpoint, serve-config,
        publish."""
        return next(s for s in self.steps if s.name == name)

    @property
    def checkpoint_step(self) -> Step:
        return self.steps[1]

    def to_dict(self) -> dict:
        return {
            "recipe": str(self.recipe.path),
            "name": self.recipe.recipe.name,
            "backend": self.backend,
            "toolchain": self.recipe.toolchain.name,
            "image": self.pins.image,
            "pinned": not self.pins.floating,
            "floating": self.pins.floating,
            "lock": self.pins.lock_state,
            "checkpoint_key": self.checkpoint_key,
            "serve_config_key": self.serve_config_key,
            "steps": [s.to_dict() for s in self.steps],
        }


def checkpoint_expectations(loaded: LoadedRecipe) -> dict:
    """What the verify step requires of the exported checkpoint (hf_quant_config.json's algorithms)."""
    q = loaded.recipe.quantization
    kv = None if q.kv_cache == "none" else q.kv_cache
    quantized = q.needs_quantize_step
    return {
        "quantized": quantized,
        "quant_algo": EXPECTED_QUANT_ALGO[q.qformat] if quantized else None,
        "kv_cache_quant_algo": EXPECTED_KV_ALGO[kv] if quantized else None,
        "group_size": q.awq_block_size if q.format == "int4_awq" else None,
    }


def make_pytorch_plan(
    loaded: LoadedRecipe,
    *,
    workdir: Path,
    lock: Lock | None = None,
    source_digest: str | None = None,
    src_root: Path | None = None,
) -> PytorchPlan:
    recipe, tc = loaded.recipe, loaded.toolchain
    pins = current_pins(loaded, lock)
    toolchain_id = pins.toolchain_id
    tp, pp = serve_world(recipe)

    fetch_params = _fetch_params(recipe, pins, source_digest)
    fetch_key = content_key("fetch", fetch_params, [], None)
    if recipe.quantization.needs_quantize_step:
        params, argv, extra_mounts, env = _quantize(loaded, src_root, hf=True)
        ckpt_key = content_key("quantize", params, [fetch_key], toolchain_id)
        image: str | None = pins.image
        name = "quantize"
    else:  # nothing to quantize: the fetched weights, config and tokenizer are the checkpoint
        params, argv, extra_mounts, env = {"files": list(HF_ALLOW_PATTERNS)}, None, [], {}
        ckpt_key = content_key("package", params, [fetch_key], None)
        image, name = None, "package"
    verify_params = {"expect": checkpoint_expectations(loaded)}
    verify_key = content_key("verify", verify_params, [ckpt_key], None)
    spec = tc.llm_api_spec
    serve_params = {
        "config": recipe.serve,
        "llm_api_spec": spec,
        "llm_api_commit": source(spec)["commit"] if spec else None,
        "trtllm_version": tc.trtllm_version,
        "gpu_arch": recipe.target.gpu_arch,
    }
    serve_key = content_key("serve_config", serve_params, [ckpt_key], None)

    dirs = PytorchDirs(
        model=model_dir(recipe, workdir, fetch_key),
        checkpoint=workdir / "hf-checkpoints" / _short(ckpt_key),
        serve=workdir / "serve-configs" / _short(serve_key),
        logs=workdir / "logs" / _short(serve_key),
    )
    ckpt_mount = [Mount(dirs.checkpoint, str(dirs.checkpoint))]
    serve_mount = [Mount(dirs.serve, str(dirs.serve))]
    if image is not None:
        mounts = [
            Mount(dirs.model, C_MODEL),
            Mount(dirs.checkpoint, C_CHECKPOINT, False),
            *extra_mounts,
        ]
    else:
        mounts = [
            Mount(dirs.model, str(dirs.model)),
            Mount(dirs.checkpoint, str(dirs.checkpoint), False),
        ]
    gpus = tp * pp if recipe.quantization.device == "cuda" and image is not None else 0
    steps = [
        fetch_step(fetch_key, dirs.model, fetch_params),
        Step(name, name, ckpt_key, image, argv, mounts, params, [fetch_key], gpus=gpus, env=env),
        Step("verify", "verify", verify_key, None, None, ckpt_mount, verify_params, [ckpt_key]),
        Step(
            "publish-checkpoint",
            "publish",
            content_key("publish", {"kind": "hf-checkpoint"}, [verify_key], None),
            None,
            None,
            ckpt_mount,
            {},
            [verify_key],
        ),
        Step("serve-config", "serve_config", serve_key, None, None, serve_mount, serve_params, [ckpt_key]),
        Step(
            "publish",
            "publish",
            content_key("publish", {"kind": "serve-config"}, [serve_key], None),
            None,
            None,
            serve_mount,
            {},
            [serve_key],
        ),
    ]
    return PytorchPlan(loaded, pins, dirs, steps, ckpt_key, serve_key)

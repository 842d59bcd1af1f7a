"""Fixed recipes, locks and pins for the farm's rendering tests: hf:// models at fixed commits and a
toolchain pinned to a PLACEHOLDER digest (no registry is reachable here; the digest is not a real
image's). Goldens replace the temporary folder with /srv/farm."""

from __future__ import annotations

from pathlib import Path

from trtbuild.recipe.load import load_recipe
from trtbuild.recipe.lock import Lock, inputs_digest, lock_path_for
from trtbuild.recipe.toolchain import load_toolchains

PLACEHOLDER_DIGEST = "sha256:" + "a" * 64
ROOT = "/srv/farm"

LLAMA_SCRIPT = "/app/tensorrt_llm/examples/models/core/llama/convert_checkpoint.py"
TOOLCHAINS = f"""# TEST pins for the farm rendering tests: the digest is a placeholder, not a real image's.
[toolchain."trtllm-1.1.0"]
trtllm_version = "1.1.0"
image = "nvcr.io/nvidia/tensorrt-llm/release:1.1.0"
digest = "{PLACEHOLDER_DIGEST}"
supported_archs = ["sm90"]
cli_spec = "1.x"
trtllm_build = ["trtllm-build"]
python = "python3"
examples_dir = "/app/tensorrt_llm/examples"
convert_scripts = {{ LlamaForCausalLM = "{LLAMA_SCRIPT}" }}
"""

RECIPES = {
    "llama-70b-fp8.toml": """name = "llama-70b-fp8"
[model]
source = "hf://meta-llama/Meta-Llama-3-70B-Instruct"
revision = "1111111111111111111111111111111111111111"
dtype = "bfloat16"
[quantization]
format = "fp8"
kv_cache = "fp8"
[quantization.calibration]
samples = 16
max_seq_len = 128
dataset = "calib/prompts.jsonl"
[parallelism]
tp = 4
[limits]
max_batch_size = 64
max_input_len = 2048
max_seq_len = 4096
max_num_tokens = 8192
[target]
gpu_arch = "sm90"
toolchain = "trtllm-1.1.0"
""",
    "llama-8b-bf16.toml": """name = "llama-8b-bf16"
[model]
source = "hf://meta-llama/Meta-Llama-3-8B-Instruct"
revision = "2222222222222222222222222222222222222222"
dtype = "bfloat16"
[parallelism]
tp = 1
[limits]
max_batch_size = 32
max_input_len = 1024
max_seq_len = 2048
max_num_tokens = 4096
[target]
gpu_arch = "sm90"
toolchain = "trtllm-1.1.0"
""",
    "llama-8b-bf16-bs64.toml": """name = "llama-8b-bf16-bs64"
[model]
source = "hf://meta-llama/Meta-Llama-3-8B-Instruct"
revision = "2222222222222222222222222222222222222222"
dtype = "bfloat16"
[parallelism]
tp = 1
[limits]
max_batch_size = 64
max_input_len = 1024
max_seq_len = 2048
max_num_tokens = 4096
[target]
gpu_arch = "sm90"
toolchain = "trtllm-1.1.0"
""",
}


def write_lock(recipe: Path, toolchains: Path) -> Path:
    """A fresh lock for ``recipe`` (nothing floats: the pins above are what it records)."""
    loaded = load_recipe(recipe, load_toolchains(toolchains))
    tc, model = loaded.toolchain, loaded.recipe.model
    lock = Lock(
        inputs_digest=inputs_digest(loaded),
        toolchain=tc.name,
        image=tc.image,
        image_digest=PLACEHOLDER_DIGEST,
        model_source=model.source,
        requested_revision=model.revision,
        revision=model.revision,
        locked_at="2026-12-01T00:00:00+00:00",
    )
    path = lock_path_for(recipe)
    path.write_text(lock.to_toml(recipe.name))
    return path


def write_project(root: Path) -> tuple[Path, list[Path]]:
    """toolchains.toml and the recipes (locked) under ``root/recipes``."""
    recipes = root / "recipes"
    (recipes / "calib").mkdir(parents=True)
    (recipes / "calib" / "prompts.jsonl").write_text('{"text": "The capital of France is"}\n')
    toolchains = root / "toolchains.toml"
    toolchains.write_text(TOOLCHAINS)
    paths = []
    for name, body in RECIPES.items():
        path = recipes / name
        path.write_text(body)
        write_lock(path, toolchains)
        paths.append(path)
    return toolchains, paths

"""Pytest fixtures and helpers for tests that need the toolchain double (a TEST FIXTURE: the product
never selects it).

Use from a conftest: ``from tests.toolchain_double.fixture import docker_client, toolchain_double  # noqa``
(or ``pytest_plugins = ["tests.toolchain_double.fixture"]`` in the top-level conftest).

Environment:
- ``TRTBUILD_TEST_TOOLCHAIN_DOUBLE``: JSON {version: pinned ref} printed by tests/toolchain_double/build.sh;
  when unset the fixture builds and publishes the double itself (starting the local registry if needed,
  and stopping it at the end of the session if it started it).
- ``CI=true``: a missing Docker Engine or registry FAILS the tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sysconfig
from pathlib import Path

import pytest

from tests.toolchain_double import publish
from trtbuild.recipe.cli_spec import family_for_version
from trtbuild.runner import Mount

HERE = Path(__file__).resolve().parent
DOUBLE_SRC = HERE / "context"  # put on PYTHONPATH to run the double's tools on the host
HOST_SITE_TARGET = "/opt/host-site-packages"
# archs the real toolchains of these versions are pinned with in recipes/toolchains.toml
SUPPORTED_ARCHS = ("sm80", "sm86", "sm89", "sm90")
LLAMA_SCRIPT = "/app/tensorrt_llm/examples/models/core/llama/convert_checkpoint.py"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str) -> None:
    """Fail in CI, skip elsewhere."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def docker_client():
    """A docker SDK client to a live Docker Engine (fail in CI / skip otherwise when there is none)."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine
        unavailable(f"Docker Engine not reachable ({exc}); run tests/services/dockerd.sh start")
    return client


@pytest.fixture(scope="session")
def toolchain_double(docker_client) -> dict[str, str]:
    """{"1.1.0": "127.0.0.1:5000/trtbuild-test/toolchain-double@sha256:…", "0.21.0": …}: pinned refs,
    present in the local Docker Engine and in the local registry."""
    env = os.environ.get("TRTBUILD_TEST_TOOLCHAIN_DOUBLE")
    if env:
        refs = json.loads(env)
        try:
            for ref in refs.values():
                docker_client.images.get(ref)
            if publish.context_digest("1.1.0") == docker_client.images.get(refs["1.1.0"]).labels.get(
                "org.trtbuild.recipe.toolchain-double.context"
            ):
                yield refs
                return
        except Exception:  # noqa: BLE001 - stale or missing: rebuild below
            pass
    started = False
    if not publish.registry_up():
        script = HERE.parent / "services" / "local_registry.sh"
        p = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True)
        if p.returncode != 0:
            unavailable(f"local registry could not start: {p.stderr.strip()}")
        started = True
    base = subprocess.run(["bash", str(HERE / "base_image.sh")], capture_output=True, text=True)
    if base.returncode != 0:
        unavailable(f"base image for the toolchain double unavailable: {base.stderr.strip()[-500:]}")
    try:
        refs = publish.publish(client=docker_client)
    except publish.PublishError as exc:
        unavailable(str(exc))
    try:
        yield refs
    finally:
        if started:
            subprocess.run(
                ["bash", str(HERE.parent / "services" / "local_registry.sh"), "stop"], capture_output=True
            )


def tag_of(version: str) -> str:
    """The floating tag of a double version (what `trtbuild lock` resolves to the pinned digest)."""
    return f"{publish.REPOSITORY}:{version}"


def write_toolchains_toml(
    path: Path,
    refs: dict[str, str],
    *,
    pinned: bool = True,
    min_driver: str | None = None,
    prefix: str = "double-",
) -> Path:
    """A toolchains.toml (schema of recipes/toolchains.toml) pinning the double: one
    ``[toolchain."double-<version>"]`` per version. ``pinned=False`` writes the tag only (for lock tests)."""
    lines = [
        "# TEST toolchains: the toolchain double (tests/toolchain_double), never a real NVIDIA image.",
        "",
    ]
    for ver, ref in refs.items():
        repo, digest = ref.split("@", 1)
        lines += [f'[toolchain."{prefix}{ver}"]', f'trtllm_version = "{ver}"', f'image = "{repo}:{ver}"']
        if pinned:
            lines.append(f'digest = "{digest}"')
        lines += [f'tensorrt_version = "{publish.TENSORRT_VERSION}"']
        if min_driver is not None:
            lines.append(f'min_driver = "{min_driver}"')
        lines += [
            f"supported_archs = {json.dumps(list(SUPPORTED_ARCHS))}",
            f'cli_spec = "{family_for_version(ver)}"',
            'trtllm_build = ["trtllm-build"]',
            'python = "python3"',
            'examples_dir = "/app/tensorrt_llm/examples"',
            f'convert_scripts = {{ LlamaForCausalLM = "{LLAMA_SCRIPT}" }}',
            "",
        ]
    path.write_text("\n".join(lines))
    return path


def host_site_packages() -> list[Path]:
    """The host interpreter's site-packages (purelib, platlib; deduplicated, existing)."""
    paths = sysconfig.get_paths()
    out: list[Path] = []
    for key in ("purelib", "platlib"):
        p = Path(paths[key])
        if p.is_dir() and p not in out:
            out.append(p)
    return out


def host_python_mounts() -> tuple[list[Mount], dict[str, str]]:
    """Real ModelOpt (torch, transformers) inside the double: the host's site-packages mounted read-only
    and put on PYTHONPATH (host Python 3.11 and the image's 3.11 share the ABI)."""
    mounts = [
        Mount(source=p, target=f"{HOST_SITE_TARGET}{i or ''}", read_only=True)
        for i, p in enumerate(host_site_packages())
    ]
    return mounts, {"PYTHONPATH": ":".join(m.target for m in mounts)}


def make_tiny_llama(
    path: Path,
    *,
    vocab_size: int = 512,
    hidden_size: int = 64,
    intermediate_size: int = 128,
    num_hidden_layers: int = 4,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    max_position_embeddings: int = 256,
    rope_scaling: dict | None = None,
    seed: int = 0,
    tie_word_embeddings: bool = False,
) -> Path:
    """A tiny Hugging Face Llama checkpoint (config.json + model.safetensors, float32, deterministic
    random weights), written with the standard library only."""
    path.mkdir(parents=True, exist_ok=True)
    head = hidden_size // num_attention_heads
    kv = num_key_value_heads * head
    shapes: dict[str, list[int]] = {
        "model.embed_tokens.weight": [vocab_size, hidden_size],
        "model.norm.weight": [hidden_size],
    }
    if not tie_word_embeddings:
        shapes["lm_head.weight"] = [vocab_size, hidden_size]
    for i in range(num_hidden_layers):
        p = f"model.layers.{i}."
        shapes.update(
            {
                p + "input_layernorm.weight": [hidden_size],
                p + "post_attention_layernorm.weight": [hidden_size],
                p + "self_attn.q_proj.weight": [hidden_size, hidden_size],
                p + "self_attn.k_proj.weight": [kv, hidden_size],
                p + "self_attn.v_proj.weight": [kv, hidden_size],
                p + "self_attn.o_proj.weight": [hidden_size, hidden_size],
                p + "mlp.gate_proj.weight": [intermediate_size, hidden_size],
                p + "mlp.up_proj.weight": [intermediate_size, hidden_size],
                p + "mlp.down_proj.weight": [hidden_size, intermediate_size],
            }
        )
    rng = random.Random(seed)
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name in sorted(shapes):
        n = 1
        for d in shapes[name]:
            n *= d
        data = struct.pack(f"<{n}f", *(rng.uniform(-0.1, 0.1) for _ in range(n)))
        header[name] = {"dtype": "F32", "shape": shapes[name], "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    with open(path / "model.safetensors", "wb") as fh:
        fh.write(struct.pack("<Q", len(hjson)) + hjson)
        for b in blobs:
            fh.write(b)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": num_hidden_layers,
        "num_attention_heads": num_attention_heads,
        "num_key_value_heads": num_key_value_heads,
        "max_position_embeddings": max_position_embeddings,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "rope_scaling": rope_scaling,
        "hidden_act": "silu",
        "tie_word_embeddings": tie_word_embeddings,
        "torch_dtype": "float32",
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return path

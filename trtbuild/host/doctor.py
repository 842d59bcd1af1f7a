"""Host checks before a build: Docker Engine, NVIDIA runtime, GPUs and arch, driver vs each pinned
toolchain, free disk and host RAM vs an estimate for a recipe, registry reachable.

Each check is one ``Check`` (ok | warn | fail | skip); the host is fit when none failed.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trtbuild.host.fingerprint import GpuFingerprint, host_gpus

GIB = 1024**3
# bytes per parameter of the weights written by each quantization format (scales are negligible)
QUANT_BYTES = {"none": None, "fp8": 1.0, "int8_sq": 1.0, "int4_awq": 0.5}
DTYPE_BYTES = {"float32": 4.0, "float16": 2.0, "bfloat16": 2.0, "auto": 2.0}
ST_DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail | skip
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Estimate:
    """Bytes a recipe needs on disk (source + checkpoint + engine) and in host RAM (quantize/convert)."""

    params: int | None
    source_bytes: int | None
    disk_bytes: int | None
    ram_bytes: int | None
    basis: str


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


# ---- individual checks ----------------------------------------------------------------------------
def check_docker(client_factory=None) -> tuple[Check, Any]:
    from trtbuild.errors import RunnerUnavailable
    from trtbuild.runner.docker import DockerRunner

    try:
        client = client_factory() if client_factory else DockerRunner().client()
        ver = client.version().get("Version", "?")
    except RunnerUnavailable as exc:
        return Check("docker", "fail", str(exc).split("\n")[0], exc.hint), None
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return Check("docker", "ok", f"Docker Engine {ver} answers at {host}"), client


def check_nvidia_runtime(client: Any) -> Check:
    from trtbuild.runner.docker import NVIDIA_RUNTIME_FIX

    if client is None:
        return Check("nvidia-runtime", "skip", "Docker Engine not reachable")
    info = client.info()
    runtimes = sorted((info.get("Runtimes") or {}).keys())
    hook = shutil.which("nvidia-container-runtime-hook")
    if "nvidia" in runtimes:
        return Check("nvidia-runtime", "ok", f"runtime 'nvidia' registered (runtimes: {', '.join(runtimes)})")
    if hook:
        return Check(
            "nvidia-runtime", "ok", f"NVIDIA Container Toolkit hook at {hook} (GPU requests go through it)"
        )
    return Check(
        "nvidia-runtime",
        "fail",
        f"no NVIDIA runtime in the Docker Engine (runtimes: {', '.join(runtimes) or 'none'}); "
        "GPU steps would fail",
        NVIDIA_RUNTIME_FIX,
    )


def check_gpus(fp: GpuFingerprint) -> Check:
    if fp.gpu_count == 0:
        return Check(
            "gpus",
            "fail",
            f"no GPU: {fp.error}",
            "build on a host with NVIDIA GPUs and the NVIDIA driver (nvidia-smi must work)",
        )
    first = fp.gpus[0]
    mem = f", {fp.memory_mib} MiB" if fp.memory_mib else ""
    cuda = f", CUDA {fp.cuda_driver_version}" if fp.cuda_driver_version else ""
    status = "ok" if fp.homogeneous else "warn"
    mixed = "" if fp.homogeneous else " (mixed GPU models: the engine targets the first)"
    return Check(
        "gpus",
        status,
        f"{fp.gpu_count} × {first.name} ({first.arch or 'arch unknown'}{mem}), "
        f"driver {fp.driver_version or 'unknown'}{cuda}{mixed}",
    )


def check_toolchain(tc: Any, fp: GpuFingerprint, locked_digest: str | None = None) -> Check:
    """Arch support and driver minimum of one pinned toolchain on this host."""
    name = f"toolchain {tc.name}"
    pinned = tc.pinned_ref(locked_digest)
    pin = (
        "pinned by the recipe's lock"
        if locked_digest and not tc.is_pinned
        else "pinned"
        if pinned
        else "NOT pinned (run `trtbuild lock`)"
    )
    problems: list[str] = []
    notes = [f"TensorRT-LLM {tc.trtllm_version}", pin]
    if fp.gpu_arch:
        if fp.gpu_arch not in tc.supported_archs:
            problems.append(f"{fp.gpu_arch} not among its archs {', '.join(tc.supported_archs)}")
        else:
            notes.append(f"supports {fp.gpu_arch}")
    if tc.min_driver is None:
        notes.append("minimum driver unknown")
    elif fp.driver_version:
        if version_tuple(fp.driver_version) < version_tuple(tc.min_driver):
            problems.append(f"driver {fp.driver_version} < required {tc.min_driver}")
        else:
            notes.append(f"driver {fp.driver_version} ≥ {tc.min_driver}")
    if problems:
        return Check(
            name,
            "fail",
            "; ".join(problems) + f" ({', '.join(notes)})",
            "use a toolchain that supports this GPU/driver, or upgrade the NVIDIA driver",
        )
    status = "ok" if pinned and tc.min_driver is not None else "warn"
    return Check(name, status, ", ".join(notes))


def safetensors_bytes(model_dir: Path) -> int | None:
    """Exact weight bytes from the safetensors headers of a local checkpoint."""
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for k, v in header.items():
            if k != "__metadata__":
                start, end = v["data_offsets"]
                total += end - start
    return total


def param_count(facts: Any) -> int | None:
    """Llama-style parameter count from config facts (None when a needed field is unknown)."""
    h, inter, layers = facts.hidden_size, facts.intermediate_size, facts.num_hidden_layers
    vocab, heads = facts.vocab_size, facts.num_attention_heads
    if None in (h, inter, layers, vocab, heads):
        return None
    kv = facts.num_key_value_heads or heads
    attn = h * h * 2 + 2 * h * (h * kv // heads)
    return 2 * vocab * h + layers * (attn + 3 * h * inter + 2 * h) + h


def estimate(loaded: Any) -> Estimate:
    recipe = loaded.recipe
    dtype_b = DTYPE_BYTES.get(recipe.model.dtype, 2.0)
    target_b = QUANT_BYTES.get(recipe.quantization.format) or dtype_b
    src: int | None = None
    params: int | None = None
    basis = "unknown model size (config.json not available offline)"
    if recipe.model.scheme == "file":
        src = safetensors_bytes(Path(recipe.model.location))
        if src is not None:
            params = int(src / dtype_b)
            basis = "safetensors headers of the local model"
    if src is None and loaded.facts is not None:
        params = param_count(loaded.facts)
        if params is not None:
            src = int(params * dtype_b)
            basis = f"{params / 1e9:.2f} B parameters from config.json × {dtype_b:g} bytes"
    if src is None or params is None:
        return Estimate(None, None, None, None, basis)
    out = int(params * target_b)
    disk = int((src + 2 * out) * 1.1)  # source + checkpoint + engine, 10% slack
    ram = int(src * (1.3 if recipe.quantization.needs_quantize_step else 1.1))
    return Estimate(params, src, disk, ram, basis)


def free_disk(path: Path) -> int:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def host_ram() -> int:
    """MemAvailable of /proc/meminfo (falls back to total physical memory)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_resources(est: Estimate | None, work: Path) -> list[Check]:
    disk, ram = free_disk(work), host_ram()
    if est is None or est.disk_bytes is None or est.ram_bytes is None:
        why = "no recipe given" if est is None else est.basis
        return [
            Check(
                "disk", "ok" if disk > 50 * GIB else "warn", f"{disk / GIB:.1f} GiB free at {work} ({why})"
            ),
            Check("ram", "ok", f"{ram / GIB:.1f} GiB available ({why})"),
        ]
    out = []
    d_ok = disk >= est.disk_bytes
    out.append(
        Check(
            "disk",
            "ok" if d_ok else "fail",
            f"{disk / GIB:.1f} GiB free at {work}, recipe needs ~{est.disk_bytes / GIB:.1f} GiB "
            f"({est.basis})",
            None if d_ok else f"free space under {work} or set TRTBUILD_HOME elsewhere",
        )
    )
    r_ok = ram >= est.ram_bytes
    out.append(
        Check(
            "ram",
            "ok" if r_ok else "fail",
            f"{ram / GIB:.1f} GiB available, recipe needs ~{est.ram_bytes / GIB:.1f} GiB to load the model",
            None if r_ok else "build on a host with more memory",
        )
    )
    return out


def check_registry() -> Check:
    """Open the registry and touch both halves: one catalog query and one store listing."""
    from trtbuild.settings import open_registry

    try:
        return Check("registry", "ok", f"registry reachable: {open_registry().check().describe()}")
    except Exception as exc:  # any failure to open store or catalog is a failed check
        return Check(
            "registry",
            "fail",
            f"registry not reachable: {exc}",
            getattr(exc, "hint", None) or "check TRTBUILD_DB_URL / TRTBUILD_STORE_URL",
        )


# ---- all together -------------------------------------------------------------------------------
def run_checks(
    *, recipe: Path | None = None, toolchains_path: Path | None = None, gpu_fp: GpuFingerprint | None = None
) -> list[Check]:
    from trtbuild.recipe.toolchain import load_toolchains
    from trtbuild.settings import cache_home

    checks: list[Check] = []
    docker_check, client = check_docker()
    checks.append(docker_check)
    checks.append(check_nvidia_runtime(client))
    fp = gpu_fp or host_gpus()
    checks.append(check_gpus(fp))
    toolchains = load_toolchains(toolchains_path)
    loaded = None
    if recipe is not None:
        from trtbuild.recipe.load import load_recipe
        from trtbuild.recipe.lock import is_fresh, read_lock

        loaded = load_recipe(recipe, toolchains)
        lock = read_lock(loaded)
        digest = lock.image_digest if lock is not None and is_fresh(lock, loaded) else None
        checks.append(check_toolchain(loaded.toolchain, fp, digest))
    else:
        checks.extend(check_toolchain(tc, fp) for tc in toolchains.values())
    checks.extend(check_resources(estimate(loaded) if loaded else None, cache_home()))
    checks.append(check_registry())
    return checks

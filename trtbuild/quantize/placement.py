"""Where the quantize driver puts the model on CUDA: which GPUs, how much of each, and what is offloaded.

The driver calibrates on every GPU it can see (``CUDA_VISIBLE_DEVICES``; the builder's quantize step
gets tp x pp GPUs, the same as the build step). ``plan_placement`` decides, before any weight is loaded:

- one GPU and the model fits: everything on it (``device_map={"": 0}``, no accelerate hooks);
- several GPUs: transformers' ``device_map="auto"`` with ``max_memory`` per GPU, which spreads the
  decoder layers evenly over all of them (accelerate's balanced split);
- the model does not fit the GPUs: CPU offload of the layers that do not fit when it is allowed
  (``cpu_offload``: slow, every forward pass copies those layers' weights to the GPU), else a
  ``QuantizeInputError`` naming the figures and the fixes, before anything is loaded.

Each GPU's weight budget (accelerate's ``max_memory``) is its free memory minus a reserve for the
CUDA context and allocator (``CONTEXT_RESERVE_BYTES``) and for the calibration forward pass
(``activation_reserve``), capped by ``max_gpu_memory_gib`` when set (recipe
``quantization.max_gpu_memory_gib``, env ``TRTBUILD_QUANT_MAX_GPU_MEMORY_GIB``).

Stdlib only, except ``materialize_offloaded`` (torch + accelerate, called by the driver on a loaded
model).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from trtbuild.quantize.errors import QuantizeInputError

GIB = 1024**3
CONTEXT_RESERVE_BYTES = 2 * GIB  # CUDA context, cuBLAS workspaces, caching-allocator fragmentation
ACTIVATION_FACTOR = 8  # live [batch, seq, width] tensors in one decoder layer's calibration pass, with margin
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
# safetensors dtype codes -> bytes per element (floating tensors are loaded in the calibration dtype)
_ST_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
_ST_FLOAT = {"F64", "F32", "F16", "BF16"}


@dataclass(frozen=True)
class Gpu:
    """One visible CUDA device as the driver sees it (index within ``CUDA_VISIBLE_DEVICES``)."""

    index: int
    name: str
    total_bytes: int
    free_bytes: int


@dataclass
class Placement:
    """The load arguments (``device_map``, ``max_memory``) and what they mean, for the report."""

    device_map: str | dict
    max_memory: dict | None
    gpus: list[Gpu]
    weights_bytes: int
    reserve_bytes: int  # kept free on each GPU for the context and the calibration pass
    cpu_offload: bool  # True when some layers are expected on the CPU
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "device_map": self.device_map if isinstance(self.device_map, str) else dict(self.device_map),
            "max_memory": {str(k): v for k, v in (self.max_memory or {}).items()} or None,
            "gpus": [g.__dict__ for g in self.gpus],
            "weights_bytes": self.weights_bytes,
            "reserve_bytes": self.reserve_bytes,
            "cpu_offload": self.cpu_offload,
            "notes": list(self.notes),
        }


def _safetensors_header(path: Path) -> dict:
    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        return json.loads(fh.read(n))


def checkpoint_weight_bytes(model_dir: str | Path, calib_dtype: str) -> int:
    """Bytes the checkpoint's tensors take once loaded in ``calib_dtype`` (floating tensors converted).

    Read from the safetensors headers (no tensor data is read); for other formats, the files' sizes.
    """
    d = Path(model_dir)
    files = sorted(d.glob("*.safetensors"))
    per = DTYPE_BYTES.get(calib_dtype, 2)
    if files:
        total = 0
        for f in files:
            for name, meta in _safetensors_header(f).items():
                if name == "__metadata__":
                    continue
                numel = 1
                for s in meta["shape"]:
                    numel *= int(s)
                code = meta["dtype"]
                total += numel * (per if code in _ST_FLOAT else _ST_BYTES.get(code, 4))
        return total
    return sum(p.stat().st_size for p in d.iterdir() if p.suffix in (".bin", ".pt", ".pth"))


def activation_reserve(
    dims: dict, batch_size: int, seq_len: int, dtype_bytes: int, factor: int = ACTIVATION_FACTOR
) -> int:
    """GPU bytes to keep free for one calibration batch on a GPU holding decoder layers and the lm_head.

    One decoder layer at a time is live in a ``use_cache=False`` forward pass: ``factor`` tensors of
    [batch, seq, max(hidden, intermediate)] cover the MLP's gate/up/product, ModelOpt's quantizer
    temporaries and AWQ's search copies; the logits [batch, seq, vocab] are counted twice (the output
    and a copy). Every GPU reserves the whole amount: accelerate picks the lm_head's GPU only while
    loading.
    """
    width = max(int(dims.get("hidden_size", 0)), int(dims.get("intermediate_size", 0)))
    vocab = int(dims.get("vocab_size", 0))
    tokens = batch_size * seq_len
    return tokens * (factor * width + 2 * vocab) * dtype_bytes


def plan_placement(
    gpus: list[Gpu],
    weights_bytes: int,
    reserve_bytes: int,
    *,
    max_gpu_memory_gib: float | None = None,
    cpu_offload: bool = False,
    cpu_bytes: int | None = None,
) -> Placement:
    """The ``device_map``/``max_memory`` to load with; ``QuantizeInputError`` when the model cannot fit.

    ``reserve_bytes`` is the per-GPU reserve for the calibration pass (``activation_reserve``); the
    CUDA context reserve comes on top. ``cpu_bytes`` caps what offload may put in host memory.
    """
    if not gpus:
        raise QuantizeInputError("--device cuda: no CUDA device is visible here", hint="use --device cpu")
    if max_gpu_memory_gib is not None and max_gpu_memory_gib <= 0:
        raise QuantizeInputError(f"maximum GPU memory {max_gpu_memory_gib} GiB: must be > 0")
    reserve = CONTEXT_RESERVE_BYTES + reserve_bytes
    budget: dict = {}
    notes = []
    for g in gpus:
        room = max(0, g.free_bytes - reserve)
        if max_gpu_memory_gib is not None:
            cap = int(max_gpu_memory_gib * GIB)
            if cap < room:
                notes.append(f"GPU {g.index}: weights capped at {max_gpu_memory_gib:g} GiB")
            room = min(room, cap)
        budget[g.index] = room
    on_gpus = sum(budget.values())
    fits = weights_bytes <= on_gpus
    if fits and len(gpus) == 1:
        return Placement({"": gpus[0].index}, None, gpus, weights_bytes, reserve, False, notes)
    if fits:
        notes.append(f"split over {len(gpus)} GPUs (balanced)")
        return Placement("auto", budget, gpus, weights_bytes, reserve, False, notes)
    need = f"{weights_bytes / GIB:.1f} GiB of weights"
    have = (
        f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''} leave {on_gpus / GIB:.1f} GiB for weights "
        f"after {reserve / GIB:.1f} GiB each for the CUDA context and the calibration batch"
    )
    if not cpu_offload:
        raise QuantizeInputError(
            f"the model does not fit the visible GPUs: {need}; {have}",
            hint="give the quantize step more GPUs (it gets tp x pp: raise parallelism.tp/pp), lower "
            "quantization.calibration.batch_size / max_seq_len, raise quantization.max_gpu_memory_gib, "
            "or allow CPU offload (quantization.cpu_offload = true; env TRTBUILD_QUANT_CPU_OFFLOAD=1; slow)",
        )
    if cpu_bytes is not None and weights_bytes > on_gpus + cpu_bytes:
        raise QuantizeInputError(
            f"the model does not fit the visible GPUs and host memory: {need}; {have}, and the host "
            f"{cpu_bytes / GIB:.1f} GiB",
            hint="give the quantize step more GPUs (raise parallelism.tp/pp) or run it on a larger host",
        )
    budget["cpu"] = cpu_bytes if cpu_bytes is not None else weights_bytes
    notes.append(f"{(weights_bytes - on_gpus) / GIB:.1f} GiB or more of weights offloaded to the CPU")
    return Placement("auto", budget, gpus, weights_bytes, reserve, True, notes)


def input_device(device_map: dict | None, embed_name: str) -> str:
    """Where calibration batches and gate prompts go: the input embedding's execution device.

    ``device_map`` is the loaded model's ``hf_device_map`` (module name -> GPU index, "cpu" or
    "disk"); the entry for ``embed_name`` is the longest name that is it or one of its parents. An
    offloaded embedding runs on accelerate's main device, the first GPU in the map's order.
    """
    if not device_map:
        return "cpu"
    match = None
    for name in device_map:
        if name in ("", embed_name) or embed_name.startswith(name + "."):
            if match is None or len(name) > len(match):
                match = name
    dev = device_map[match] if match is not None else None
    if dev in (None, "cpu", "disk"):
        gpus = [v for v in device_map.values() if v not in ("cpu", "disk")]
        dev = gpus[0] if gpus else "cpu"
    if isinstance(dev, int):
        return f"cuda:{dev}"
    return str(dev)


def devices_used(device_map: dict | None) -> dict[str, int]:
    """How many top-level entries of ``hf_device_map`` each device holds (for the report)."""
    out: dict[str, int] = {}
    for dev in (device_map or {}).values():
        key = f"cuda:{dev}" if isinstance(dev, int) else str(dev)
        out[key] = out.get(key, 0) + 1
    return out


def materialize_offloaded(model) -> list[str]:
    """Give accelerate-offloaded modules real CPU tensors and drop the dispatch hooks; return their names.

    An offloaded module's parameters are meta tensors between forward passes (the real ones live in
    its hook's ``weights_map``, where ModelOpt writes SmoothQuant/AWQ-updated weights back), and
    ModelOpt's TensorRT-LLM export reads ``module.weight`` directly: "Cannot copy out of meta
    tensor". Each such module gets its weights from the map on the CPU, and its buffers (quantizer
    scales made on the execution device during calibration) follow it there, so every layer is whole
    on one device. Modules on GPUs stay where they are.
    """
    from accelerate.hooks import (  # type: ignore[import-untyped]
        AlignDevicesHook,
        SequentialHook,
        remove_hook_from_module,
    )
    from accelerate.utils import set_module_tensor_to_device  # type: ignore[import-untyped]

    def offload_hook(hook):
        if isinstance(hook, AlignDevicesHook) and hook.offload and hook.weights_map is not None:
            return hook
        if isinstance(hook, SequentialHook):
            for h in hook.hooks:
                found = offload_hook(h)
                if found is not None:
                    return found
        return None

    names = []
    for name, module in model.named_modules():
        hook = offload_hook(getattr(module, "_hf_hook", None))
        if hook is None:
            continue
        for tname, tensor in list(module.state_dict(keep_vars=True).items()):
            if tensor.device.type == "meta":
                set_module_tensor_to_device(module, tname, "cpu", value=hook.weights_map[tname])
        module.to("cpu")
        names.append(name)
    if names:
        remove_hook_from_module(model, recurse=True)
    return names

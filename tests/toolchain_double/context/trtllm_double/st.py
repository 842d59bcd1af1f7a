"""Minimal safetensors reader/writer (format: 8-byte little-endian header length, JSON header, data).

Tensors are handled as raw little-endian bytes: sliced along a dimension and converted between
float32, float16 and bfloat16 without numpy.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
              "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
TLLM_TO_ST = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


class SafetensorsError(ValueError):
    pass


@dataclass
class Tensor:
    dtype: str
    shape: list[int]
    data: bytes

    def nbytes(self) -> int:
        return len(self.data)


def read_header(path: Path) -> tuple[dict, int]:
    """(header dict, offset of the data section). Validates offsets against the file size."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise SafetensorsError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8 or n > 100_000_000:
            raise SafetensorsError(f"{path}: header length {n} is larger than the file")
        try:
            header = json.loads(fh.read(n))
        except ValueError as exc:
            raise SafetensorsError(f"{path}: header is not JSON: {exc}") from exc
    data_len = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        expect = DTYPE_SIZE.get(info["dtype"], 0) * _numel(info["shape"])
        if not (0 <= start <= end <= data_len) or (expect and end - start != expect):
            raise SafetensorsError(f"{path}: tensor {name!r} has inconsistent offsets {start}..{end}")
    return header, 8 + n


def read(path: Path) -> dict[str, Tensor]:
    header, base = read_header(path)
    out: dict[str, Tensor] = {}
    with open(path, "rb") as fh:
        blob = fh.read()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = Tensor(info["dtype"], list(info["shape"]), blob[base + start:base + end])
    return out


def write(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> int:
    """Write tensors (sorted by name, 8-byte aligned header as the reference writer does)."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        header[name] = {"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + t.nbytes()]}
        offset += t.nbytes()
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(hjson)))
        fh.write(hjson)
        for name in sorted(tensors):
            fh.write(tensors[name].data)
    tmp.replace(path)
    return 8 + len(hjson) + offset


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def split(t: Tensor, parts: int, index: int, dim: int) -> Tensor:
    """The ``index``-th of ``parts`` equal slices along ``dim`` (row-major bytes)."""
    if parts == 1:
        return t
    if t.shape[dim] % parts:
        raise SafetensorsError(f"dimension {dim} of shape {t.shape} is not divisible by {parts}")
    es = DTYPE_SIZE[t.dtype]
    outer = _numel(t.shape[:dim])
    inner = _numel(t.shape[dim + 1:]) * es
    span = t.shape[dim] // parts
    row = t.shape[dim] * inner
    lo, hi = index * span * inner, (index + 1) * span * inner
    mv = memoryview(t.data)
    data = b"".join(mv[o * row + lo:o * row + hi] for o in range(outer))
    shape = list(t.shape)
    shape[dim] = span
    return Tensor(t.dtype, shape, data)


def concat0(ts: list[Tensor]) -> Tensor:
    shape = list(ts[0].shape)
    shape[0] = sum(t.shape[0] for t in ts)
    return Tensor(ts[0].dtype, shape, b"".join(t.data for t in ts))


def convert(t: Tensor, dtype: str) -> Tensor:
    """Convert between F32, F16 and BF16 (BF16 from F32 by truncation)."""
    if t.dtype == dtype:
        return t
    f32 = _to_f32(t)
    n = len(f32) // 4
    if dtype == "F32":
        data = f32
    elif dtype == "BF16":
        out = bytearray(n * 2)
        out[0::2] = f32[2::4]
        out[1::2] = f32[3::4]
        data = bytes(out)
    elif dtype == "F16":
        vals = struct.unpack(f"<{n}f", f32)
        data = struct.pack(f"<{n}e", *(max(-65504.0, min(65504.0, v)) for v in vals))
    else:
        raise SafetensorsError(f"cannot convert {t.dtype} to {dtype}")
    return Tensor(dtype, t.shape, data)


def _to_f32(t: Tensor) -> bytes:
    if t.dtype == "F32":
        return t.data
    n = len(t.data) // 2
    if t.dtype == "BF16":
        out = bytearray(n * 4)
        out[2::4] = t.data[0::2]
        out[3::4] = t.data[1::2]
        return bytes(out)
    if t.dtype == "F16":
        return struct.pack(f"<{n}f", *struct.unpack(f"<{n}e", t.data))
    raise SafetensorsError(f"cannot convert tensor of dtype {t.dtype}")

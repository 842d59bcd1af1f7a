"""Calibration and held-out text: the built-in set or a local file; never a download.

Reading passages is stdlib only. ``pack_calibration`` needs a tokenizer and torch.

Accepted files (``--calib_dataset PATH``):
  ``.jsonl``  one JSON value per line: a string, or an object with a ``text`` field (or ``content``,
              ``prompt``, ``article``); objects with ``"split": "eval"`` are held out, not calibrated on
  ``.json``   a list of such values
  other       plain text; passages are separated by blank lines
The built-in set (``builtin``) is ``trtbuild/data/calib_builtin.jsonl``: 293 hand-written English
prose, code and math passages; those marked ``"split": "eval"`` (about one in eight) are the accuracy
gate's held-out prompts and are never calibrated on.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from trtbuild.quantize.errors import QuantizeInputError
from trtbuild.quantize.options import BUILTIN_DATASET

BUILTIN_PATH = Path(__file__).resolve().parent.parent / "data" / "calib_builtin.jsonl"
TEXT_KEYS = ("text", "content", "prompt", "article")


@dataclass
class Passages:
    """Texts read from one source: calibration texts and held-out (eval) texts."""

    source: str  # "builtin" or the file's absolute path
    sha256: str
    calib: list[str]
    held_out: list[str] = field(default_factory=list)


def _text_of(value: object, where: str) -> tuple[str, str]:
    """(text, split) of one JSON record."""
    if isinstance(value, str):
        return value, "calib"
    if isinstance(value, dict):
        for key in TEXT_KEYS:
            if isinstance(value.get(key), str):
                return value[key], str(value.get("split", "calib"))
        raise QuantizeInputError(
            f"{where}: record has none of the text fields {', '.join(TEXT_KEYS)}",
            hint="give each record a string field 'text'",
        )
    raise QuantizeInputError(f"{where}: expected a string or an object, got {type(value).__name__}")


def read_passages(dataset: str) -> Passages:
    """Read ``dataset`` (``builtin`` or a local file path). ``QuantizeInputError`` names what is wrong."""
    path = BUILTIN_PATH if dataset == BUILTIN_DATASET else Path(dataset).expanduser()
    if not path.is_file():
        raise QuantizeInputError(
            f"--calib_dataset {dataset!r}: no such local file; trtbuild never downloads calibration data",
            hint=f"give a local .jsonl/.json/.txt file, or {BUILTIN_DATASET!r} for the built-in set",
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QuantizeInputError(f"--calib_dataset {path}: not UTF-8 text ({exc})") from None
    records: list[tuple[str, str]] = []
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise QuantizeInputError(f"{path}:{n}: invalid JSON ({exc.msg})") from None
            records.append(_text_of(value, f"{path}:{n}"))
    elif suffix == ".json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise QuantizeInputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(value, list):
            raise QuantizeInputError(f"{path}: expected a JSON list of strings or objects")
        records = [_text_of(v, f"{path}[{i}]") for i, v in enumerate(value)]
    else:
        records = [(p.strip(), "calib") for p in text.split("\n\n")]
    calib = [t for t, split in records if t.strip() and split != "eval"]
    held_out = [t for t, split in records if t.strip() and split == "eval"]
    if not calib:
        raise QuantizeInputError(
            f"--calib_dataset {path}: no calibration text in it",
            hint="add passages (records with a non-empty 'text')",
        )
    source = BUILTIN_DATASET if dataset == BUILTIN_DATASET else str(path.resolve())
    return Passages(source, hashlib.sha256(raw).hexdigest(), calib, held_out)


def builtin_held_out() -> list[str]:
    """The built-in set's held-out passages (the accuracy gate's prompts)."""
    return read_passages(BUILTIN_DATASET).held_out


@dataclass
class CalibBatches:
    batches: list  # torch.LongTensor [batch, seq]
    samples: int
    seq_len: int
    tokens: int
    unique_tokens: int  # tokens in one pass over the passages
    passes: float  # tokens / unique_tokens: >1 means passages were reused (reshuffled) to fill calib_size


def pack_calibration(
    tokenizer, texts: list[str], calib_size: int, batch_size: int, seq_len: int, seed: int
) -> CalibBatches:
    """Pack passages into ``calib_size`` sequences of ``seq_len`` tokens, ``batch_size`` per batch.

    Each sequence starts with BOS (when the tokenizer has one); passages are joined with EOS. When one
    pass over the passages gives too few tokens, further passes in a new seeded order follow, and the
    report says how many passes were used.
    """
    import torch

    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    encoded = [ids + ([eos] if eos is not None else []) for ids in encoded if ids]
    unique = sum(len(ids) for ids in encoded)
    if unique == 0:
        raise QuantizeInputError("the calibration passages produce no tokens with this tokenizer")
    body = seq_len - (1 if bos is not None else 0)
    need = calib_size * body
    rng = random.Random(seed)
    stream: list[int] = []
    while len(stream) < need:
        order = list(range(len(encoded)))
        rng.shuffle(order)
        for i in order:
            stream.extend(encoded[i])
            if len(stream) >= need:
                break
    rows = [([bos] if bos is not None else []) + stream[i * body : (i + 1) * body] for i in range(calib_size)]
    data = torch.tensor(rows, dtype=torch.long)
    batches = [data[i : i + batch_size] for i in range(0, calib_size, batch_size)]
    return CalibBatches(batches, calib_size, seq_len, calib_size * seq_len, unique, round(need / unique, 3))


def held_out_prompts(tokenizer, texts: list[str], count: int, tokens: int) -> list:
    """Up to ``count`` held-out prompts as 1-D token tensors of at most ``tokens`` tokens (BOS first)."""
    import torch

    bos = tokenizer.bos_token_id
    if len(texts) > count:  # evenly spaced, so that every kind of passage is represented
        texts = [texts[(i * len(texts)) // count] for i in range(count)]
    out = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids = ([bos] if bos is not None else []) + ids
        if len(ids) >= 2:
            out.append(torch.tensor(ids[:tokens], dtype=torch.long))
        if len(out) == count:
            break
    return out

"""Calibration text: the built-in set, local files, packing; never a download."""

from __future__ import annotations

import json

import pytest

from trtbuild.quantize.calib import BUILTIN_PATH, builtin_held_out, read_passages
from trtbuild.quantize.errors import QuantizeInputError


def test_builtin_set_is_varied_with_a_disjoint_held_out_split():
    records = [json.loads(line) for line in BUILTIN_PATH.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 250
    kinds = {r["kind"] for r in records}
    assert kinds == {"prose", "code", "math"}
    assert len({r["text"] for r in records}) == len(records)  # no duplicates
    p = read_passages("builtin")
    assert p.source == "builtin" and len(p.sha256) == 64
    assert len(p.calib) + len(p.held_out) == len(records)
    assert not set(p.calib) & set(p.held_out)
    assert len(p.held_out) >= 16 and builtin_held_out() == p.held_out
    held_kinds = {r["kind"] for r in records if r["split"] == "eval"}
    assert held_kinds == kinds


def test_local_files(tmp_path):
    jl = tmp_path / "c.jsonl"
    jl.write_text('"plain string"\n{"text": "a"}\n\n{"content": "b", "split": "eval"}\n{"prompt": "c"}\n')
    p = read_passages(str(jl))
    assert p.calib == ["plain string", "a", "c"] and p.held_out == ["b"] and p.source == str(jl.resolve())
    js = tmp_path / "c.json"
    js.write_text(json.dumps(["x", {"article": "y"}]))
    assert read_passages(str(js)).calib == ["x", "y"]
    txt = tmp_path / "c.txt"
    txt.write_text("first passage\nstill first\n\nsecond passage\n\n\n")
    assert read_passages(str(txt)).calib == ["first passage\nstill first", "second passage"]


def test_bad_sources_name_the_problem(tmp_path):
    with pytest.raises(QuantizeInputError, match="never downloads") as err:
        read_passages("cnn_dailymail")
    assert err.value.exit_code == 2 and "builtin" in str(err.value)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": \n')
    with pytest.raises(QuantizeInputError, match=r"bad.jsonl:2: invalid JSON"):
        read_passages(str(bad))
    nofield = tmp_path / "nofield.jsonl"
    nofield.write_text('{"body": "x"}\n')
    with pytest.raises(QuantizeInputError, match="none of the text fields"):
        read_passages(str(nofield))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(QuantizeInputError, match="no calibration text"):
        read_passages(str(empty))
    notlist = tmp_path / "d.json"
    notlist.write_text('{"text": "x"}')
    with pytest.raises(QuantizeInputError, match="JSON list"):
        read_passages(str(notlist))


def test_packing_is_full_length_seeded_and_reports_reuse(tiny_llama):
    from transformers import AutoTokenizer

    from trtbuild.quantize.calib import held_out_prompts, pack_calibration

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    texts = read_passages("builtin").calib
    a = pack_calibration(tok, texts, calib_size=6, batch_size=4, seq_len=32, seed=1)
    b = pack_calibration(tok, texts, calib_size=6, batch_size=4, seq_len=32, seed=1)
    c = pack_calibration(tok, texts, calib_size=6, batch_size=4, seq_len=32, seed=2)
    assert [tuple(t.shape) for t in a.batches] == [(4, 32), (2, 32)]
    assert all((t[:, 0] == tok.bos_token_id).all() for t in a.batches)
    assert all(x.equal(y) for x, y in zip(a.batches, b.batches, strict=True))
    assert not all(x.equal(y) for x, y in zip(a.batches, c.batches, strict=True))
    assert a.tokens == 6 * 32 and a.passes < 1
    small = pack_calibration(tok, texts[:2], calib_size=6, batch_size=6, seq_len=64, seed=1)
    assert small.passes > 1 and small.batches[0].shape == (6, 64)
    prompts = held_out_prompts(tok, read_passages("builtin").held_out, count=16, tokens=32)
    assert len(prompts) == 16 and all(2 <= len(p) <= 32 and p[0] == tok.bos_token_id for p in prompts)

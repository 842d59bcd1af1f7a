"""Rendering every template and writing build contexts (no Docker needed: --no-base-check)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.bake.conftest import FIXTURES, metadata_for
from trtbuild.bake import BakeRequest, ServeOptions, TritonOptions, prepare
from trtbuild.bake.render import TEMPLATES, dockerfiles_dir, render_dockerfile
from trtbuild.errors import InputError

HASH = "sha256:" + "ab" * 32
TEMPLATES_DIR = FIXTURES / "base" / "all_models" / "inflight_batcher_llm"


def request(engine: Path, template: str, **kw) -> BakeRequest:
    kw.setdefault("base_image", "trtbuild-test/bake:base")
    return BakeRequest(
        engine_dir=engine,
        metadata=kw.pop("metadata", metadata_for()),
        template=template,
        artifact_hash=HASH,
        artifact_name="llama-8b:fp8",
        check_base=False,
        **kw,
    )


def dockerfile_instructions(text: str) -> list[str]:
    """Instruction keywords of a Dockerfile (continuations joined, comments dropped)."""
    joined = text.replace("\\\n", " ")
    return [
        line.split()[0] for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_renders_a_complete_context(engine_factory, tmp_path, template):
    engine = engine_factory()
    result = prepare(request(engine, template), tmp_path / "ctx")
    ctx = result.context_dir
    text = (ctx / "Dockerfile").read_text()
    kinds = dockerfile_instructions(text)
    assert kinds[0] == "FROM" and kinds.count("FROM") == 1
    assert text.count("FROM trtbuild-test/bake:base") == 1
    for instruction in ("USER", "COPY", "LABEL", "HEALTHCHECK", "CMD", "EXPOSE"):
        assert instruction in kinds, instruction
    assert "USER 10001:10001" in text
    # engine and tokenizer staged; the tokenizer is not left inside engine/
    assert sorted(p.name for p in (ctx / "engine").iterdir()) == ["config.json", "rank0.engine"]
    assert (ctx / "engine" / "rank0.engine").read_bytes() == (engine / "rank0.engine").read_bytes()
    assert (ctx / "tokenizer" / "tokenizer.json").is_file()
    artifact = json.loads((ctx / "trtbuild-artifact.json").read_text())
    assert artifact["hash"] == HASH and artifact["metadata"]["gpu_arch"] == "sm90"
    labels = result.labels
    assert labels["ai.trtbuild.artifact"] == HASH
    assert labels["ai.trtbuild.trtllm_version"] == "1.0.0"
    assert labels["ai.trtbuild.gpu_arch"] == "sm90"
    assert labels["ai.trtbuild.recipe_digest"] == "sha256:" + "1" * 64
    assert labels["org.opencontainers.image.base.name"] == "trtbuild-test/bake:base"
    assert f'"ai.trtbuild.artifact"="{HASH}"' in text


def test_trtllm_serve_command_carries_the_engine_limits(engine_factory, tmp_path):
    engine = engine_factory(tp=2, max_batch_size=32, max_beam_width=2)
    meta = metadata_for(tp=2, max_batch_size=32, max_beam_width=2)
    prepare(
        request(engine, "trtllm-serve", metadata=meta, serve=ServeOptions(max_batch_size=16, port=9000)),
        tmp_path / "ctx",
    )
    text = (tmp_path / "ctx" / "Dockerfile").read_text()
    cmd = json.loads(next(line for line in text.splitlines() if line.startswith("CMD "))[4:])
    assert cmd[:2] == ["trtllm-serve", "/opt/trtbuild/engine"]
    flags = dict(zip(cmd[2::2], cmd[3::2], strict=True))
    assert flags == {
        "--tokenizer": "/opt/trtbuild/tokenizer",
        "--backend": "tensorrt",
        "--host": "0.0.0.0",
        "--port": "9000",
        "--tp_size": "2",
        "--pp_size": "1",
        "--max_batch_size": "16",
        "--max_beam_width": "2",
        "--max_num_tokens": "8192",
        "--max_seq_len": "4096",
        "--kv_cache_free_gpu_memory_fraction": "0.9",
    }
    assert "http://127.0.0.1:9000/health" in text
    assert "EXPOSE 9000" in text


def test_trtllm_serve_refuses_engines_before_1_0(engine_factory, tmp_path):
    engine = engine_factory(version="0.21.0")
    with pytest.raises(InputError, match="trtllm-serve template supports the 1.x line"):
        prepare(request(engine, "trtllm-serve", metadata=metadata_for("0.21.0")), tmp_path / "ctx")
    assert not (tmp_path / "ctx").exists()


def test_default_bases(engine_factory, tmp_path):
    engine = engine_factory()
    meta = replace(metadata_for(), toolchain_image=None)
    res = prepare(request(engine, "trtllm-serve", base_image=None, metadata=meta), tmp_path / "a")
    assert res.base_image == "nvcr.io/nvidia/tensorrt-llm/release:1.0.0"
    res = prepare(
        request(
            engine,
            "trtllm-serve",
            base_image=None,
            metadata=metadata_for(toolchain_image="nvcr.io/nvidia/tensorrt-llm/release@sha256:" + "c" * 64),
        ),
        tmp_path / "b",
    )
    assert res.base_image.endswith("@sha256:" + "c" * 64)
    with pytest.raises(InputError, match="pass --base with the Triton image"):
        prepare(request(engine, "triton", base_image=None), tmp_path / "c")


def test_triton_context_fills_in_the_image_by_default(engine_factory, tmp_path):
    engine = engine_factory(max_batch_size=64, max_beam_width=2)
    prepare(request(engine, "triton", metadata=metadata_for(max_beam_width=2)), tmp_path / "ctx")
    ctx = tmp_path / "ctx"
    values = json.loads((ctx / "model_repo_fill" / "values.json").read_text())
    assert values["models"] == ["preprocessing", "tensorrt_llm", "postprocessing", "ensemble"]
    sub = values["substitutions"]
    assert sub["triton_max_batch_size"] == "64" and sub["max_beam_width"] == "2"
    assert sub["engine_dir"] == "/opt/trtbuild/engine" and sub["tokenizer_dir"] == "/opt/trtbuild/tokenizer"
    assert sub["decoupled_mode"] == "true" and sub["batching_strategy"] == "inflight_fused_batching"
    assert (ctx / "model_repo_fill" / "fill_model_repo.py").is_file()
    text = (ctx / "Dockerfile").read_text()
    assert "fill_model_repo.py /app/all_models/inflight_batcher_llm" in text
    assert "/v2/health/ready" in text and "TRTLLM_ORCHESTRATOR" not in text


def test_triton_multi_gpu_uses_orchestrator_mode(engine_factory, tmp_path):
    engine = engine_factory(tp=4)
    prepare(request(engine, "triton", metadata=metadata_for(tp=4)), tmp_path / "ctx")
    assert "TRTLLM_ORCHESTRATOR=1" in (tmp_path / "ctx" / "Dockerfile").read_text()


def test_context_dir_must_be_new_or_empty(engine_factory, tmp_path):
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "keep.txt").write_text("user data")
    with pytest.raises(InputError, match="not an empty directory"):
        prepare(request(engine_factory(), "trtllm-serve"), tmp_path / "ctx")
    assert (tmp_path / "ctx" / "keep.txt").read_text() == "user data"


def test_tokenizer_is_required(engine_factory, tmp_path):
    engine = engine_factory(tokenizer=False)
    with pytest.raises(InputError, match="pass --tokenizer DIR"):
        prepare(request(engine, "trtllm-serve"), tmp_path / "ctx")
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.model").write_bytes(b"sp")
    prepare(request(engine, "trtllm-serve", tokenizer_dir=tok), tmp_path / "ctx")
    assert (tmp_path / "ctx" / "tokenizer" / "tokenizer.model").read_bytes() == b"sp"


def test_missing_template_variable_is_a_plain_error(tmp_path):
    broken = tmp_path / "dockerfiles"
    shutil.copytree(dockerfiles_dir(), broken)
    path = broken / "trtllm-serve.Dockerfile.j2"
    path.write_text(
        path.read_text().replace("FROM {{ base_image }}", "FROM {{ base_image }}\nARG X={{ no_such_var }}")
    )
    with pytest.raises(InputError) as err:
        render_dockerfile("trtllm-serve", {"base_image": "b", "template": "t", "artifact_hash": "h"}, broken)
    message = str(err.value)
    assert "template variable missing" in message and "is undefined" in message
    assert "Traceback" not in message
    # the real template with a variable left out names it too
    with pytest.raises(
        InputError,
        match=r"trtllm-serve\.Dockerfile\.j2:\d+ -> _common\.j2:\d+: template variable missing: 'user'",
    ):
        render_dockerfile("trtllm-serve", {"base_image": "b", "template": "t", "artifact_hash": "h"})


def test_unknown_template(tmp_path, engine_factory):
    with pytest.raises(InputError, match="unknown template 'vllm'"):
        prepare(request(engine_factory(), "vllm"), tmp_path / "ctx")


def test_prefilled_triton_repo_from_local_templates(engine_factory, tmp_path):
    engine = engine_factory()
    opts = TritonOptions(triton_max_batch_size=8, decoupled=False, extra={"enable_kv_cache_reuse": "true"})
    prepare(request(engine, "triton", triton=opts, triton_templates=TEMPLATES_DIR), tmp_path / "ctx")
    repo = tmp_path / "ctx" / "model_repo"
    assert sorted(p.name for p in repo.iterdir()) == [
        "ensemble",
        "postprocessing",
        "preprocessing",
        "tensorrt_llm",
    ]
    trt = (repo / "tensorrt_llm" / "config.pbtxt").read_text()
    assert 'backend: "tensorrtllm"' in trt
    assert "max_batch_size: 8" in trt and "preferred_batch_size: [ 8 ]" in trt
    assert "decoupled: false" in trt
    assert 'key: "gpt_model_path" value: { string_value: "/opt/trtbuild/engine" }' in trt
    assert 'key: "enable_kv_cache_reuse" value: { string_value: "true" }' in trt
    # optional parameters stay unset the upstream way
    assert 'string_value: "${guided_decoding_backend}"' in trt
    assert (repo / "preprocessing" / "1" / "model.py").is_file()
    assert "COPY model_repo/ /opt/trtbuild/model_repo/" in (tmp_path / "ctx" / "Dockerfile").read_text()

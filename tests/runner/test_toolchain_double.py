"""The toolchain double: the real command lines of cli_spec.json and the real output layouts."""

from __future__ import annotations

import json
import struct
import textwrap
from pathlib import Path

import pytest

from tests.toolchain_double.context.trtllm_double import st
from trtbuild.errors import StepFailed
from trtbuild.runner import Mount, RunSpec

pytestmark = pytest.mark.docker
SPECS = Path(__file__).resolve().parents[2] / "trtbuild" / "data" / "cli_specs"


def spec_flags(family: str, tool: str) -> list[dict]:
    return json.loads((SPECS / f"{family}.json").read_text())["tools"][tool]["flags"]


CONVERT = "/app/tensorrt_llm/examples/models/core/llama/convert_checkpoint.py"


def run(runner, image, argv, tmp_path, mounts=(), env=None, name="double"):
    lines: list[str] = []
    res = runner.run(
        RunSpec(name=name, image=image, argv=argv, mounts=list(mounts), env=env or {}),
        log_path=tmp_path / f"{name}.log",
        on_line=lines.append,
    )
    return res, lines


def failure(runner, image, argv, tmp_path, mounts=()) -> str:
    with pytest.raises(StepFailed) as err:
        run(runner, image, argv, tmp_path, mounts)
    return str(err.value)


def test_unknown_flag_fails_like_argparse(runner, double, tmp_path):
    msg = failure(
        runner, double, ["trtllm-build", "--checkpoint_dir", "/c", "--max_batch", "8", "--bogus"], tmp_path
    )
    assert "exit code 2" in msg and "trtllm-build: error: unrecognized arguments: --bogus" in msg
    msg = failure(
        runner, double, ["python3", CONVERT, "--model_dir", "/m", "--tp", "2", "--use_fp9"], tmp_path
    )
    assert "exit code 2" in msg and "unrecognized arguments: --use_fp9" in msg


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--max_batch_size", "many"], "argument --max_batch_size: invalid int value: 'many'"),
        (["--gemm_plugin", "int4"], "argument --gemm_plugin: invalid choice: 'int4'"),
        (["--context_fmha", "true"], "argument --context_fmha: invalid choice: 'true'"),
        (["--kv_cache_type", "sometimes"], "argument --kv_cache_type: invalid KVCacheType"),
    ],
)
def test_types_and_choices_are_validated(runner, double, tmp_path, argv, expected):
    msg = failure(runner, double, ["trtllm-build", "--checkpoint_dir", "/c", *argv], tmp_path)
    assert "exit code 2" in msg and expected in msg


def _valid_value(entry: dict) -> list[str]:
    typ = entry["type"]
    if typ == "store_true":
        return []
    if entry.get("choices"):
        return [str(entry["choices"][-1])]
    if typ.startswith("enum KVCacheType"):
        return ["paged"]
    if typ.startswith("int"):
        return ["2"]
    if typ.startswith("float"):
        return ["0.5"]
    return ["x"]


# Parses every flag of the spec, one at a time, inside the image (one container for all of them).
PARSE_EACH = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, "/opt/toolchain_double")
    from trtllm_double.cli import parser_for
    tool = sys.argv[1]
    for argv in json.loads(sys.argv[2]):
        parser_for(tool, tool).parse_args(argv)
        print("accepted", " ".join(argv))
""")


@pytest.mark.parametrize(
    "tool,version,family",
    [
        ("trtllm-build", "1.1.0", "1.1"),
        ("convert_checkpoint", "1.1.0", "1.1"),
        ("trtllm-build", "0.21.0", "0.21"),
    ],
)
def test_every_flag_of_the_spec_is_accepted(runner, toolchain_double, tmp_path, tool, version, family):
    entries = spec_flags(family, tool)
    argvs = []
    for e in entries:
        for name in [e["flag"], *e.get("aliases", [])]:
            argvs.append([name, *_valid_value(e)])
    _, lines = run(
        runner,
        toolchain_double[version],
        ["python3", "-c", PARSE_EACH, tool, json.dumps(argvs)],
        tmp_path,
    )
    assert len([ln for ln in lines if ln.startswith("accepted")]) == len(argvs)


@pytest.mark.parametrize("version", ["1.1.0", "0.21.0"])
def test_pre_8329_parsers_keep_auto_parallel(runner, toolchain_double, tmp_path, version):
    """0.21-1.2 were cut before PR #8329 removed --auto_parallel: their doubles parse it (and then fail on the
    missing checkpoint, exit 1, not 2). The 1.3 spec has no such flag (tests/recipes/test_cli_spec.py)."""
    argv = ["trtllm-build", "--checkpoint_dir", "/c", "--auto_parallel", "2"]
    msg = failure(runner, toolchain_double[version], argv, tmp_path)
    assert "exit code 1" in msg and "No such file or directory: '/c/config.json'" in msg


def test_main_rules_raise_like_main(runner, double, tmp_path):
    argv = [
        "trtllm-build",
        "--checkpoint_dir",
        "/c",
        "--multiple_profiles",
        "enable",
        "--opt_num_tokens",
        "8",
    ]
    msg = failure(runner, double, argv, tmp_path)
    assert (
        "exit code 1" in msg
        and "RuntimeError: multiple_profiles is enabled, while opt_num_tokens is set" in msg
    )


def _convert(runner, image, model: Path, out: Path, tmp_path, *args: str) -> list[str]:
    mounts = [Mount(model, "/model"), Mount(out, "/out", read_only=False)]
    _, lines = run(
        runner,
        image,
        ["python3", CONVERT, "--model_dir", "/model", "--output_dir", "/out/ckpt", *args],
        tmp_path,
        mounts,
        name="convert",
    )
    return lines


def _build(runner, image, out: Path, tmp_path, *args: str, env=None) -> list[str]:
    _, lines = run(
        runner,
        image,
        [
            "trtllm-build",
            "--checkpoint_dir",
            "/out/ckpt",
            "--output_dir",
            "/out/engine",
            "--output_timing_cache",
            "/out/timing.cache",
            *args,
        ],
        tmp_path,
        [Mount(out, "/out", read_only=False)],
        env=env,
        name="build",
    )
    return lines


def _hf(model: Path) -> dict[str, st.Tensor]:
    return st.read(model / "model.safetensors")


def test_convert_writes_the_real_checkpoint_layout_with_sharded_weights(runner, double, tiny_llama, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _convert(
        runner, double, tiny_llama, out, tmp_path, "--tp_size", "2", "--pp_size", "2", "--dtype", "bfloat16"
    )
    ckpt = out / "ckpt"
    assert sorted(p.name for p in ckpt.iterdir()) == ["config.json"] + [
        f"rank{i}.safetensors" for i in range(4)
    ]
    cfg = json.loads((ckpt / "config.json").read_text())
    assert cfg["architecture"] == "LlamaForCausalLM" and cfg["dtype"] == "bfloat16"
    assert {k: cfg["mapping"][k] for k in ("world_size", "tp_size", "pp_size")} == {
        "world_size": 4,
        "tp_size": 2,
        "pp_size": 2,
    }
    assert cfg["quantization"]["quant_algo"] is None and cfg["quantization"]["kv_cache_quant_algo"] is None
    assert (
        cfg["vocab_size"],
        cfg["hidden_size"],
        cfg["num_hidden_layers"],
        cfg["num_attention_heads"],
        cfg["num_key_value_heads"],
        cfg["intermediate_size"],
        cfg["max_position_embeddings"],
    ) == (512, 64, 4, 4, 2, 128, 256)
    assert cfg["rotary_scaling"] == {"type": "linear", "factor": 2.0}
    hf = _hf(tiny_llama)
    r0, r3 = st.read(ckpt / "rank0.safetensors"), st.read(ckpt / "rank3.safetensors")
    # pp rank 0 holds layers 0-1 and the embedding; pp rank 1 (ranks 2, 3) layers 2-3, ln_f and lm_head
    assert "transformer.vocab_embedding.weight" in r0 and "lm_head.weight" not in r0
    assert "lm_head.weight" in r3 and "transformer.vocab_embedding.weight" not in r3
    assert {k.split(".")[2] for k in r0 if k.startswith("transformer.layers.")} == {"0", "1"}
    # qkv of tp rank 1: q rows 32..63 + k rows 16..31 + v rows 16..31 (head 16, 2 kv heads), in bfloat16
    qkv = r3["transformer.layers.0.attention.qkv.weight"]
    assert qkv.dtype == "BF16" and qkv.shape == [32 + 16 + 16, 64]
    q_hf = hf["model.layers.2.self_attn.q_proj.weight"]
    expect = st.convert(st.split(q_hf, 2, 1, 0), "BF16").data
    assert qkv.data[: len(expect)] == expect
    # attention output split along the input dimension
    dense = r3["transformer.layers.1.attention.dense.weight"]
    assert dense.shape == [64, 32]
    assert (
        dense.data == st.convert(st.split(hf["model.layers.3.self_attn.o_proj.weight"], 2, 1, 1), "BF16").data
    )
    for i in range(4):
        st.read_header(ckpt / f"rank{i}.safetensors")  # valid files


def test_build_writes_engines_and_the_engine_config(runner, double, tiny_llama, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _convert(runner, double, tiny_llama, out, tmp_path, "--tp_size", "2")
    lines = _build(
        runner,
        double,
        out,
        tmp_path,
        "--max_batch_size",
        "8",
        "--max_input_len",
        "2048",
        "--gemm_plugin",
        "auto",
        "--use_paged_context_fmha",
        "enable",
        "--context_fmha",
        "disable",
        "--workers",
        "2",
    )
    eng = out / "engine"
    assert sorted(p.name for p in eng.iterdir()) == ["config.json", "rank0.engine", "rank1.engine"]
    cfg = json.loads((eng / "config.json").read_text())
    assert set(cfg) == {"version", "pretrained_config", "build_config"} and cfg["version"] == "1.1.0"
    assert cfg["pretrained_config"] == json.loads((out / "ckpt" / "config.json").read_text())
    b = cfg["build_config"]
    assert b["max_seq_len"] == 512  # deduced: 256 positions × linear rope factor 2
    # normalised as trtllm-build does: 8192 (default) capped at 8 × 512; opt = min(8 × 1, 4096)
    assert b["max_input_len"] == 512 and b["max_batch_size"] == 8 and b["max_num_tokens"] == 4096
    assert b["opt_num_tokens"] == 8 and b["kv_cache_type"] == "PAGED" and b["max_beam_width"] == 1
    p = b["plugin_config"]
    # context FMHA off turns paged (and FP8) context FMHA off, as builder.build() does
    assert p["gemm_plugin"] == "auto" and p["context_fmha"] is False and p["use_paged_context_fmha"] is False
    assert p["use_fp8_context_fmha"] is False
    assert p["gpt_attention_plugin"] == "auto" and p["lora_plugin"] is None and p["dtype"] == "float16"
    for r in (0, 1):
        weights = (out / "ckpt" / f"rank{r}.safetensors").stat().st_size
        assert abs((eng / f"rank{r}.engine").stat().st_size - weights) < 1024  # sized like the rank's weights
    assert any("1 worker" in ln for ln in lines)  # --workers capped at the GPUs the double reports
    first = {r: (eng / f"rank{r}.engine").read_bytes() for r in (0, 1)}
    # deterministic: the same inputs give the same bytes; the timing cache of the first build is reused
    lines = _build(
        runner,
        double,
        out,
        tmp_path,
        "--max_batch_size",
        "8",
        "--max_input_len",
        "2048",
        "--gemm_plugin",
        "auto",
        "--use_paged_context_fmha",
        "enable",
        "--context_fmha",
        "disable",
        "--workers",
        "2",
        "--input_timing_cache",
        "/out/timing.cache",
    )
    assert {r: (eng / f"rank{r}.engine").read_bytes() for r in (0, 1)} == first
    hit = [ln for ln in lines if "loaded timing cache" in ln]
    assert hit and hit[0].split(": ")[-1].startswith(tuple(f"{n}/{n}" for n in range(1, 20)))


def test_build_reads_a_modelopt_style_quantized_checkpoint(runner, double, tmp_path):
    """A checkpoint as ModelOpt's TensorRT-LLM export writes it: config.json + rank{N}.safetensors with
    FP8 weights and scales."""
    ckpt = tmp_path / "out" / "ckpt"
    ckpt.mkdir(parents=True)
    cfg = {
        "architecture": "LlamaForCausalLM",
        "dtype": "bfloat16",
        "vocab_size": 512,
        "hidden_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": 1024,
        "rotary_scaling": {"type": "llama3", "factor": 8.0},
        "mapping": {"world_size": 1, "tp_size": 1, "pp_size": 1},
        "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"},
    }
    (ckpt / "config.json").write_text(json.dumps(cfg))
    st.write(
        ckpt / "rank0.safetensors",
        {
            "transformer.layers.0.attention.qkv.weight": st.Tensor("F8_E4M3", [128, 64], bytes(128 * 64)),
            "transformer.layers.0.attention.qkv.weights_scaling_factor": st.Tensor(
                "F32", [], struct.pack("<f", 0.5)
            ),
        },
    )
    _build(runner, double, tmp_path / "out", tmp_path)
    eng = json.loads((tmp_path / "out" / "engine" / "config.json").read_text())
    assert eng["pretrained_config"]["quantization"]["quant_algo"] == "FP8"
    assert eng["build_config"]["max_seq_len"] == 1024  # llama3 rope: factor ignored


def test_build_refuses_what_the_real_one_refuses(runner, double, tiny_llama, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mounts = [Mount(out, "/out", read_only=False)]
    msg = failure(runner, double, ["trtllm-build", "--checkpoint_dir", "/out/missing"], tmp_path, mounts)
    assert "exit code 1" in msg and "No such file or directory: '/out/missing/config.json'" in msg
    _convert(runner, double, tiny_llama, out, tmp_path, "--tp_size", "2")
    cfg_path = out / "ckpt" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["mapping"]["world_size"] = 4
    cfg_path.write_text(json.dumps(cfg))
    msg = failure(runner, double, ["trtllm-build", "--checkpoint_dir", "/out/ckpt"], tmp_path, mounts)
    assert "world_size 4" in msg and "tp_size × pp_size × cp_size = 2 × 1 × 1" in msg
    cfg["mapping"] |= {"world_size": 4, "tp_size": 4}
    cfg_path.write_text(json.dumps(cfg))
    msg = failure(runner, double, ["trtllm-build", "--checkpoint_dir", "/out/ckpt"], tmp_path, mounts)
    assert "lacks rank2.safetensors, rank3.safetensors" in msg


def test_convert_refuses_tp_that_does_not_divide_heads(runner, double, tiny_llama, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(StepFailed) as err:
        _convert(runner, double, tiny_llama, out, tmp_path, "--tp_size", "3")
    assert "not divisible by tp_size 3" in str(err.value)


def test_nvidia_smi_double(runner, double, tmp_path):
    _, lines = run(
        runner,
        double,
        [
            "nvidia-smi",
            "--query-gpu=name,compute_cap,driver_version,memory.total",
            "--format=csv,noheader,nounits",
        ],
        tmp_path,
    )
    assert lines == ["NVIDIA H100 80GB HBM3, 9.0, 535.104.05, 81559"]
    _, lines = run(runner, double, ["nvidia-smi"], tmp_path, env={"TOOLCHAIN_DOUBLE_GPUS": "2"})
    assert any("CUDA Version: 12.2" in ln for ln in lines) and any("TOOLCHAIN DOUBLE" in ln for ln in lines)
    assert sum("NVIDIA H100 80GB HBM3" in ln for ln in lines) == 2

"""The quantize driver against the ModelOpt + transformers of every pinned toolchain that states them.

Inside the container the driver meets that release's ModelOpt and transformers, not the host's 0.47 + 5.x.
Each stack (tests/quantize/venvs.py) is a venv reusing the installed CPU torch; the driver runs there as the
planner runs it (``python -m trtbuild.quantize`` + the planner's argv) on a tiny Llama written by the same
venv's transformers (so its config.json has that version's layout) with Llama 3's rope (base 500000, llama3
scaling). Checked: the versions the report records, the version-specific paths the driver took
(``trtbuild.quantize.compat``: the dict quant_cfg layout of ModelOpt 0.31-0.37, the dtype keyword), the
checkpoint's quantization and mapping, and that the exported config keeps the rope base and scaling.
What cannot run on a CPU is skipped with the reason (FP8 simulation in ModelOpt < 0.37).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RECIPES, REPO
from tests.quantize.venvs import STACKS, Stack, ensure
from trtbuild.quantize.compat import version_tuple
from trtbuild.quantize.options import QuantizeOptions, build_argv
from trtbuild.recipe.toolchain import load_toolchains

pytestmark = [pytest.mark.quantize, pytest.mark.slow]

LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 256,
}
FP8_CPU_REASON = (
    "ModelOpt {v} simulates FP8 only through its CUDA extension ('CUDA extension for FP8 quantization could "
    "not be built' on a CPU); FP8 with this ModelOpt runs on a GPU host (bench/quantize_gpu)"
)
# (format, KV cache, tp) per stack; FP8 ones need FP8 simulation
CASES = [("int8_sq", "int8", 1), ("int4_awq", None, 2), ("fp8", "fp8", 2)]
EXPECTED_ALGO = {"fp8": "FP8", "int8_sq": "W8A8_SQ_PER_CHANNEL", "int4_awq": "W4A16_AWQ"}


def test_every_toolchain_that_states_its_stack_is_covered():
    """Pins stating a ModelOpt version have a stack here whose versions agree with the pin."""
    by_toolchain = {s.toolchain: s for s in STACKS}
    for name, tc in load_toolchains(RECIPES / "toolchains.toml").items():
        if tc.modelopt_version is None:
            continue  # 1.2.1 and 1.3.0rc20: their container's ModelOpt version is not recorded
        stack = by_toolchain[name]
        assert version_tuple(stack.modelopt)[:2] == version_tuple(tc.modelopt_version)[:2], name
        if tc.transformers_version is not None:
            assert stack.transformers == tc.transformers_version, name


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {**env, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}


def _run(python: Path, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), *args], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module", params=STACKS, ids=[s.name for s in STACKS])
def stack(request, tmp_path_factory) -> tuple[Stack, Path, Path]:
    """(stack, its python, a tiny Llama with Llama 3 rope written by its transformers)."""
    from tests.quantize.conftest import require_stack

    require_stack()
    s: Stack = request.param
    try:
        python = ensure(s, log=lambda _m: None)
    except (OSError, subprocess.CalledProcessError) as exc:
        msg = f"cannot create the {s.name} venv ({exc}); run python3 -m tests.quantize.venvs"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    model = tmp_path_factory.mktemp(s.name) / "tiny-llama3"
    made = _run(
        python,
        [
            "-c",
            "import sys, json; from tests.tiny_models import make_tiny_llama; "
            "make_tiny_llama(sys.argv[1], rope_theta=500000.0, rope_scaling=json.loads(sys.argv[2]))",
            str(model),
            json.dumps(LLAMA3_ROPE),
        ],
    )
    assert made.returncode == 0, made.stderr[-3000:]
    return s, python, model


@pytest.mark.parametrize("fmt,kv,tp", CASES, ids=[f"{f}-kv{k}-tp{t}" for f, k, t in CASES])
def test_driver_on_the_stack_of_the_toolchain(stack, tmp_path, fmt, kv, tp):
    s, python, model = stack
    if "fp8" in (fmt, kv) and not s.fp8_on_cpu:
        pytest.skip(FP8_CPU_REASON.format(v=s.modelopt))
    out = tmp_path / "ckpt"
    options = QuantizeOptions(
        model_dir=str(model),
        output_dir=str(out),
        qformat=fmt,
        kv_cache_dtype=kv,
        tp_size=tp,
        calib_size=8,
        batch_size=4,
        calib_max_seq_length=64,
        device="cpu",
    )
    done = _run(python, ["-m", "trtbuild.quantize", *build_argv(options)])
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((out / "quantize_report.json").read_text())

    # the stack that ran is the toolchain's, and the driver took its version-specific paths
    assert report["versions"]["modelopt"] == s.modelopt
    assert report["versions"]["transformers"] == s.transformers
    old_modelopt = version_tuple(s.modelopt) < (0, 40)
    assert report["compat"]["quant_cfg_layout"] == ("dict" if old_modelopt else "list")
    new_kwarg = version_tuple(s.transformers)[:2] >= (4, 56)
    assert report["compat"]["transformers_dtype_kwarg"] == ("dtype" if new_kwarg else "torch_dtype")

    cfg = json.loads((out / "config.json").read_text())
    q = cfg["quantization"]
    assert q["quant_algo"] == EXPECTED_ALGO[fmt]
    assert q["kv_cache_quant_algo"] == {None: None, "fp8": "FP8", "int8": "INT8"}[kv]
    if fmt == "int4_awq":
        assert q["group_size"] == 128
    assert (cfg["mapping"]["tp_size"], cfg["mapping"]["world_size"]) == (tp, tp)
    assert sorted(p.name for p in out.glob("rank*.safetensors")) == [
        f"rank{r}.safetensors" for r in range(tp)
    ]
    # Llama 3's rope survives the export (written by ModelOpt itself with transformers 4.x: nothing restored)
    assert cfg["rotary_base"] == 500000.0
    assert cfg["rotary_scaling"]["rope_type"] == "llama3" and cfg["rotary_scaling"]["factor"] == 8.0
    assert report["compat"]["restored"] == []
    assert report["export"]["numerics"]["rotary_base"] == 500000.0
    assert report["accuracy"]["passed"]

"""Quantization with NVIDIA ModelOpt into TensorRT-LLM checkpoints (issue 5).

Python API for the builder (importing this package needs only the stdlib; torch, transformers and
ModelOpt are imported by ``run_quantize`` itself)::

    from trtbuild.quantize import QuantizeOptions, build_argv, build_env, run_quantize, check_shapes

    opts = QuantizeOptions(model_dir="/model", output_dir="/out", qformat="int4_awq",
                           kv_cache_dtype="fp8", tp_size=2, calib_size=128, device="cuda")
    argv = ["python3", "-m", "trtbuild.quantize", *build_argv(opts)]   # quantize.py flag names only
    env = build_env(opts, torch_extensions_dir="/cache/torch_extensions")  # gate settings etc.
    report = run_quantize(opts)            # in-process (host / LocalRunner); writes quantize_report.json
    problems = check_shapes(config_json_dict, "int4_awq", tp=2, pp=1, awq_block_size=128)

Modules: ``options`` (options, argv, env), ``shapes`` (stdlib shape checks), ``calib`` (calibration and
held-out text), ``formats`` (ModelOpt configs), ``stats`` (quantizer statistics), ``gate`` (accuracy
gate), ``driver`` (the run), ``__main__`` (``python3 -m trtbuild.quantize``).
"""

from trtbuild.quantize.driver import REPORT_NAME, REPORT_SCHEMA, read_model_config, run_quantize
from trtbuild.quantize.errors import (
    AccuracyGateFailed,
    CalibrationError,
    ExportError,
    QuantizeInputError,
    ShapeError,
)
from trtbuild.quantize.options import (
    BUILTIN_DATASET,
    GATE_DEFAULTS,
    ArgvError,
    QuantizeOptions,
    build_argv,
    build_env,
    parse_argv,
)
from trtbuild.quantize.shapes import ShapeProblem, check_shapes

__all__ = [
    "AccuracyGateFailed",
    "ArgvError",
    "BUILTIN_DATASET",
    "CalibrationError",
    "ExportError",
    "GATE_DEFAULTS",
    "QuantizeInputError",
    "QuantizeOptions",
    "REPORT_NAME",
    "REPORT_SCHEMA",
    "ShapeError",
    "ShapeProblem",
    "build_argv",
    "build_env",
    "check_shapes",
    "parse_argv",
    "read_model_config",
    "run_quantize",
]

"""Typed errors of the quantize driver (stdlib only; the CLI maps them to exit codes)."""

from __future__ import annotations

from trtbuild.errors import InputError, StepFailed, TrtbuildError


class QuantizeInputError(InputError):
    """Bad input to the driver: flags, model directory, calibration file, output directory. Exit 2."""


class ShapeError(QuantizeInputError):
    """The model's shapes do not fit the format/tp/pp; carries every ``ShapeProblem``. Exit 2."""

    def __init__(self, problems: list) -> None:
        self.problems = problems
        super().__init__(
            "the model's shapes do not fit this quantization:\n" + "\n".join(p.render() for p in problems)
        )


class CalibrationError(StepFailed):
    """Calibration ran but left enabled quantizers without scales, or ModelOpt failed. Exit 1."""


class AccuracyGateFailed(TrtbuildError):
    """The quantized model strays too far from the unquantized one on held-out prompts. Exit 1.

    ``report`` holds the measured figures and thresholds (also written to quantize_report.json).
    """

    def __init__(self, message: str, *, report: dict, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


class ExportError(StepFailed):
    """The exported TensorRT-LLM checkpoint does not say what was asked (format, KV, tp/pp, ranks). Exit 1."""


class MissingDependency(TrtbuildError):
    """torch, transformers or ModelOpt is not installed where the driver runs. Exit 1."""

"""Fixtures for tests/quantize: real ModelOpt on CPU with tiny random Llamas made here (no downloads).

Environment: CI=true turns a missing torch / transformers / ModelOpt / tokenizers into a failure instead
of a skip. Nothing else is read; models and outputs go to pytest's tmp dirs.
"""

from __future__ import annotations

import os
import warnings

import pytest

STACK = ("torch", "transformers", "modelopt", "tokenizers", "safetensors")


def require_stack() -> None:
    """Skip (or fail under CI=true) when the quantization stack is not installed."""
    import importlib.util

    missing = [m for m in STACK if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"needs {', '.join(missing)} (pip install 'trtbuild[quantize,test]')"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def stack() -> None:
    require_stack()
    warnings.filterwarnings("ignore", module="modelopt")
    warnings.filterwarnings("ignore", module="transformers")


@pytest.fixture(scope="session")
def tiny_llama(stack, tmp_path_factory) -> str:
    """hidden 256, intermediate 768, 4 heads / 2 KV heads, 2 layers, vocab 512: tp 1/2, pp 1/2, AWQ 128."""
    from tests.tiny_models import make_tiny_llama

    return str(make_tiny_llama(tmp_path_factory.mktemp("tiny-llama")))


@pytest.fixture(scope="session")
def awq_misfit_llama(stack, tmp_path_factory) -> str:
    """intermediate 640: down_proj input / tp 2 = 320, not a multiple of 128 (but of 64)."""
    from tests.tiny_models import make_tiny_llama

    return str(make_tiny_llama(tmp_path_factory.mktemp("awq-misfit-llama"), intermediate_size=640))


def quiet(_msg: str) -> None:
    """A log function that drops the driver's progress lines."""

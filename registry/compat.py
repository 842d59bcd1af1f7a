"""The one rule for "does this engine run on that TensorRT-LLM runtime": used by ``resolve`` (an engine for a
host) and by ``bake`` (an engine for a serving base image).

A TensorRT plan deserialises only in the TensorRT build that wrote it, and TensorRT-LLM checks its own
version against the engine's ``config.json``: an engine runs only on the TensorRT-LLM release that built it.
A runtime whose version is unknown is therefore not a match: guessing would let a deploy start a server
that fails with "serialization version mismatch" (or, worse, pick the newest engine of another release).
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.versions import same_version

# How a caller that does not know the runtime's version can give it (named in every refusal).
RUNTIME_VERSION_FIX = (
    "give the serving runtime's TensorRT-LLM version: --trtllm VERSION (the version of the serving image, "
    "e.g. 1.0.0 for nvcr.io/nvidia/tensorrt-llm/release:1.0.0), or --serving-image IMAGE to read it from the "
    "image's ai.trtbuild.trtllm_version label or its installed tensorrt_llm"
)


@dataclass(frozen=True)
class RuntimeVerdict:
    ok: bool
    reason: str


def runtime_verdict(engine_version: str | None, runtime_version: str | None, runtime: str) -> RuntimeVerdict:
    """Can an engine built with TensorRT-LLM ``engine_version`` run on ``runtime`` (a phrase such as
    "host runtime" or "base image X") of version ``runtime_version``? Unknown on either side is a no."""
    if runtime_version is None or not str(runtime_version).strip():
        return RuntimeVerdict(
            False,
            f"TensorRT-LLM version of the {runtime} unknown: "
            "an engine runs only on the release that built it",
        )
    if engine_version is None or not str(engine_version).strip():
        return RuntimeVerdict(False, "TensorRT-LLM version unknown: the artifact records none")
    if not same_version(engine_version, runtime_version):
        return RuntimeVerdict(
            False,
            f"TensorRT-LLM {engine_version} != {runtime} {runtime_version} "
            "(the engine would fail to load: serialization version mismatch)",
        )
    return RuntimeVerdict(True, f"TensorRT-LLM {engine_version} == {runtime} {runtime_version}")

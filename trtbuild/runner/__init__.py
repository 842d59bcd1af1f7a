"""Execution layer: run plan steps in the pinned toolchain (Docker) or in the current image (local)."""

from trtbuild.docker_engine import is_pinned
from trtbuild.runner.base import Mount, Runner, RunResult, RunSpec
from trtbuild.runner.docker import DockerRunner
from trtbuild.runner.local import LocalRunner, PathTranslator

__all__ = [
    "Mount",
    "RunSpec",
    "RunResult",
    "Runner",
    "DockerRunner",
    "LocalRunner",
    "PathTranslator",
    "is_pinned",
]

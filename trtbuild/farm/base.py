"""What every scheduler backend shares: the job of one engine key, the build command it runs, the
states a job can be in, and the small interface a backend implements."""

from __future__ import annotations

import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# A job's state as trtbuild reports it (scheduler states are mapped onto these).
PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, UNKNOWN = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "unknown",
)
ACTIVE_STATES = (PENDING, RUNNING)


@dataclass(frozen=True)
class FarmJob:
    """One engine key to build, and what its job needs: tp × pp GPUs of the recipe's arch on one node."""

    recipe: Path  # absolute; its .lock lies beside it
    name: str  # the recipe's name
    engine_key: str
    gpus: int
    gpu_arch: str  # "sm90"
    image: str  # the pinned toolchain image, repo@sha256:…
    toolchain: str
    model_source: str = ""
    dataset: Path | None = None  # a calibration file beside the recipe (None: builtin)

    @property
    def short_key(self) -> str:
        return self.engine_key.split(":", 1)[-1][:12]

    @property
    def job_name(self) -> str:
        """``trtbuild-<name>-<key12>``: a valid Slurm job name and Kubernetes object name (≤ 63 chars)."""
        name = re.sub(r"[^a-z0-9-]+", "-", self.name.lower()).strip("-")[:36].strip("-")
        return f"trtbuild-{name}-{self.short_key}"

    def to_dict(self) -> dict:
        return {
            "recipe": str(self.recipe),
            "name": self.name,
            "engine_key": self.engine_key,
            "gpus": self.gpus,
            "gpu_arch": self.gpu_arch,
            "image": self.image,
            "toolchain": self.toolchain,
            "model_source": self.model_source,
            "dataset": str(self.dataset) if self.dataset else None,
        }


@dataclass(frozen=True)
class BuildArgs:
    """The ``trtbuild build`` every job runs: always ``--locked`` and ``--json`` (the result, with the
    artifact hash, ends the job's log); the rest mirrors ``trtbuild build``'s own options."""

    trtbuild: tuple[str, ...] = (sys.executable, "-m", "trtbuild")
    toolchains: Path | None = None
    gpus: int | None = None  # GPUs per container (default tp × pp)
    memlock_limit: int | None = None
    step_timeout_s: float | None = None
    tag: str = "latest"
    extra_env: dict[str, str] = field(default_factory=dict)  # non-secret NAME=VALUE for every step

    def argv(self, recipe: str, *, runner: str) -> list[str]:
        argv = [*self.trtbuild, "build", "--locked", "--json", "--runner", runner, "--tag", self.tag]
        if self.toolchains is not None:
            argv += ["--toolchains", str(self.toolchains)]
        if self.gpus is not None:
            argv += ["--gpus", str(self.gpus)]
        if self.memlock_limit is not None:
            argv += ["--memlock-limit", str(self.memlock_limit)]
        if self.step_timeout_s is not None:
            argv += ["--timeout", f"{self.step_timeout_s:g}"]
        for name, value in sorted(self.extra_env.items()):
            argv += ["--env", f"{name}={value}"]
        return [*argv, recipe]


@dataclass(frozen=True)
class Submitted:
    """A job handed to a scheduler: its id (``farm status`` asks about it) and where its log goes."""

    job_id: str
    log: str | None = None


OnSubmitted = Callable[[FarmJob, Submitted], None]


class Scheduler(ABC):
    """A scheduler backend. It renders and submits jobs and reports and cancels them by id; it never
    queues, retries or places work itself."""

    name: str

    @abstractmethod
    def render(self, jobs: list[FarmJob], out_dir: Path) -> list[Path]:
        """Write the job scripts or manifests for ``jobs`` under ``out_dir``; return their paths."""

    @abstractmethod
    def submit(self, jobs: list[FarmJob], out_dir: Path, on_submitted: OnSubmitted) -> None:
        """Render and submit ``jobs``, calling ``on_submitted(job, submitted)`` as each is accepted (so
        the ids of jobs submitted before a failure are kept)."""

    @abstractmethod
    def states(self, job_ids: list[str]) -> dict[str, str]:
        """job id -> one of the states above (ids the scheduler no longer knows map to ``unknown``)."""

    @abstractmethod
    def cancel(self, job_ids: list[str]) -> None:
        """Cancel these jobs (the build inside stops, removes its containers and releases its lease)."""

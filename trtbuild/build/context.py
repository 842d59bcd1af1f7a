"""What every build step shares: the plan, the options, the registry and the runner, and how one step's
command runs (its log file, mounts, environment and GPUs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.build.plan import Plan, Step
from trtbuild.errors import InputError

if TYPE_CHECKING:
    from registry.api import Artifact, Registry
    from trtbuild.recipe.schema import Recipe
    from trtbuild.runner import Mount, Runner


@dataclass
class BuildOptions:
    runner: str = "docker"  # "docker" or "local"
    allow_unpinned: bool = False
    locked: bool = False
    gpus: int | None = None  # GPUs per container; None = tp × pp
    extra_mounts: list[Mount] = field(default_factory=list)  # added to every container step
    extra_env: dict[str, str] = field(default_factory=dict)  # secret, but for plain_env names
    plain_env: set[str] = field(default_factory=set)  # --env-plain: shown in logs (credentials never are)
    lease_ttl_s: float = 120.0
    wait_timeout_s: float = 6 * 3600.0
    poll_s: float = 2.0
    step_timeout_s: float | None = None
    memlock_limit: int | None = None  # bytes; None = unlimited, as TensorRT-LLM wants
    accuracy_gate: bool = True
    tag: str | None = "latest"
    toolchains_path: Path | None = None
    on_line: Callable[[str], None] | None = None
    on_event: Callable[[str], None] | None = None


@dataclass
class BuildContext:
    """One build in progress: the steps append what they ran and the logs they wrote."""

    plan: Plan
    options: BuildOptions
    registry: Registry
    runner: Runner
    started: float = field(default_factory=time.monotonic)
    steps_run: list[str] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # kept in the result (--json too)

    @property
    def recipe(self) -> Recipe:
        return self.plan.recipe.recipe

    def event(self, message: str) -> None:
        if self.options.on_event:
            self.options.on_event(message)

    def warn(self, message: str) -> None:
        """Something the user should know (a check not run, a lease lost): shown and kept in the result."""
        self.warnings.append(message)
        self.event(f"warning: {message}")

    def gpus(self, step: Step) -> int:
        return step.gpus if self.options.gpus is None else self.options.gpus

    def secret_env(self) -> tuple[str, ...]:
        """--env names whose values never reach a log or an output: all but --env-plain ones."""
        from trtbuild.secrets import secret_names

        return secret_names(self.options.extra_env, self.options.plain_env)

    def masked(self) -> tuple[str, ...]:
        """Values masked in step output: the secret --env values (a PYTHONPATH value is merged with the
        step's own) and the credentials of this process's environment."""
        from trtbuild.secrets import environ_secrets, secret_values

        return secret_values(self.options.extra_env, self.secret_env()) + environ_secrets()

    def shared_artifact(self, key: str, kind: str) -> AbstractContextManager[Artifact | None]:
        """The published ``kind`` under ``key``, or None while this build holds ``key``'s lease to make it
        (what several artifact keys share, e.g. a checkpoint: made once by one builder, others wait)."""
        from trtbuild.build.lease import held_or_found

        o = self.options
        return held_or_found(
            self.registry,
            key,
            ttl_s=o.lease_ttl_s,
            timeout_s=o.wait_timeout_s,
            poll_s=o.poll_s,
            find=lambda: self.registry.find_by_build_key(key, kind),
            on_wait=lambda _: self.event(f"another builder is making {kind} {key[:19]}; waiting"),
        )

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def run(self, step: Step, *, argv: list[str] | None = None) -> None:
        """Run ``step`` (``argv`` overrides the planned one) with its log in the plan's logs directory."""
        from trtbuild.runner import Mount, RunSpec

        mounts = [Mount(source=Path(m.source), target=m.target, read_only=m.read_only) for m in step.mounts]
        for m in mounts:
            if not m.read_only:
                m.source.mkdir(parents=True, exist_ok=True)
        env = dict(step.env)
        if step.kind == "quantize" and not self.options.accuracy_gate:
            from trtbuild.settings import QUANT_ACCURACY_GATE

            env[QUANT_ACCURACY_GATE] = (
                "0"  # --no-accuracy-gate: the driver measures and reports, and does not fail
            )
        for name, value in self.options.extra_env.items():
            env[name] = f"{env[name]}:{value}" if name == "PYTHONPATH" and name in env else value
        log_path = self.plan.dirs.logs / f"{step.kind}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        spec = RunSpec(
            name=f"trtbuild-{step.kind}-{step.key.split(':')[1][:12]}",
            image=step.image,
            argv=list(argv or step.argv or []),
            mounts=[*mounts, *self.options.extra_mounts],
            env=env,
            secret_env=self.secret_env(),
            masked_values=self.masked(),
            gpus=self.gpus(step),
            timeout_s=self.options.step_timeout_s,
        )
        self.event(f"running {step.kind} in {step.image}")
        self.runner.run(spec, log_path=log_path, on_line=self.options.on_line)
        self.logs.append(log_path)
        self.steps_run.append(step.kind)


def make_runner(kind: str, *, allow_unpinned: bool, memlock_limit: int | None) -> Any:
    """The runner ``--runner`` names: containers through the Docker Engine, or local subprocesses."""
    from trtbuild.runner import DockerRunner, LocalRunner
    from trtbuild.runner.docker import ULIMITS

    if kind == "docker":
        from trtbuild.settings import gpu_devices

        ulimits = None if memlock_limit is None else {**ULIMITS, "memlock": (memlock_limit, memlock_limit)}
        # a scheduler's allocation (farm jobs): containers get exactly those GPUs
        return DockerRunner(allow_unpinned=allow_unpinned, ulimits=ulimits, gpu_devices=gpu_devices())
    if kind == "local":
        return LocalRunner()
    raise InputError(f"--runner {kind!r}: unknown runner", hint="use --runner docker or --runner local")

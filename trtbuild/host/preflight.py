"""Before a build pulls an image or fetches a model: doctor's checks for its runner, so a host that cannot
build stops at once with doctor's message (not after pulling ~20 GB, or fetching 140 GB of weights).

docker runner: the Docker Engine answers; with GPU steps, it has the NVIDIA runtime. Both runners with GPU
steps: nvidia-smi sees enough GPUs, of the recipe's arch. ``--gpus 0`` asks for no GPU, and no GPU check runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trtbuild.errors import HostMismatch, RunnerUnavailable

if TYPE_CHECKING:
    from trtbuild.build.context import BuildContext
    from trtbuild.host.doctor import Check


def _require(check: Check, ctx: BuildContext, error: type[RunnerUnavailable] | type[HostMismatch]) -> None:
    if check.status == "fail":
        raise error(f"{check.name}: {check.detail}", hint=check.fix or "run `trtbuild doctor` for details")
    if check.status == "warn":
        ctx.warn(f"{check.name}: {check.detail}")


def preflight(ctx: BuildContext) -> None:
    """Raise RunnerUnavailable / HostMismatch with doctor's message when this host cannot run the build."""
    from trtbuild.host import doctor

    gpus = max((ctx.gpus(s) for s in ctx.plan.steps if s.image), default=0)  # the largest container step
    if ctx.options.runner == "docker":
        from trtbuild.runner import DockerRunner

        runner = ctx.runner
        check, client = doctor.check_docker(runner.client if isinstance(runner, DockerRunner) else None)
        _require(check, ctx, RunnerUnavailable)
        if gpus:
            _require(doctor.check_nvidia_runtime(client), ctx, RunnerUnavailable)
    if not gpus:
        return
    from registry.api import host_gpus

    fp = host_gpus()
    _require(doctor.check_gpus(fp), ctx, RunnerUnavailable)
    if fp.gpu_count < gpus:
        raise RunnerUnavailable(
            f"gpus: the build needs {gpus} GPU(s) (tp × pp), nvidia-smi sees {fp.gpu_count}",
            hint="build on a host with enough GPUs, or pass --gpus",
        )
    target = ctx.recipe.target.gpu_arch
    if fp.gpu_arch and fp.gpu_arch != target:
        raise HostMismatch(
            f"gpus: this host's GPUs are {fp.gpus[0].name} ({fp.gpu_arch}); the recipe targets {target}",
            hint="build on a host with the target GPUs, or change target.gpu_arch",
        )

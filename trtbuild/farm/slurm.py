"""Slurm backend: one batch script per engine key, submitted with ``sbatch --parsable``; states from
``squeue`` (and ``sacct`` where the cluster keeps accounting); ``scancel`` to cancel.

Two ways to run the build step inside the allocation:
- ``docker``: ``trtbuild build --runner docker`` on a node with a Docker Engine; its containers get the
  GPUs Slurm allocated (``$SLURM_JOB_GPUS`` -> ``TRTBUILD_GPU_DEVICES``);
- ``pyxis``: the pinned toolchain image through pyxis (``srun --container-image``): a named container gets
  a virtualenv with trtbuild (``--system-site-packages``: the image's TensorRT-LLM, ModelOpt and torch stay
  the image's), then runs ``trtbuild build --runner local`` inside it.
Secrets never enter the script: the job inherits the submitter's environment (sbatch exports it by
default) or sources ``--env-file`` (a 0600 file on storage the nodes share), named here by path only.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from trtbuild.errors import InputError, TrtbuildError
from trtbuild.farm.base import (
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    UNKNOWN,
    BuildArgs,
    FarmJob,
    OnSubmitted,
    Scheduler,
    Submitted,
)

RUNNERS = ("docker", "pyxis")
VENV = "/opt/trtbuild/venv"  # inside the pyxis container
SLURM_STATES = {
    **dict.fromkeys(("PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD"), PENDING),
    **dict.fromkeys(
        (
            "RUNNING",
            "CONFIGURING",
            "COMPLETING",
            "SUSPENDED",
            "STOPPED",
            "SIGNALING",
            "STAGE_OUT",
            "RESIZING",
        ),
        RUNNING,
    ),
    "COMPLETED": SUCCEEDED,
    **dict.fromkeys(
        (
            "FAILED",
            "TIMEOUT",
            "NODE_FAIL",
            "OUT_OF_MEMORY",
            "BOOT_FAIL",
            "DEADLINE",
            "PREEMPTED",
            "SPECIAL_EXIT",
        ),
        FAILED,
    ),
    "CANCELLED": CANCELLED,
}


class SchedulerError(TrtbuildError):
    """The scheduler refused or could not be reached."""


@dataclass(frozen=True)
class SlurmOptions:
    runner: str = "docker"  # "docker" | "pyxis"
    partition: str | None = None
    time_limit: str | None = None  # Slurm's format: minutes, HH:MM:SS, D-HH:MM:SS
    account: str | None = None
    gres_type: str | None = None  # a site's GPU GRES type: --gres=gpu:TYPE:N
    log_dir: Path | None = None  # default: <out_dir>/logs
    env_file: Path | None = None  # sourced by the job: registry URLs, AWS keys, HF_TOKEN
    trtbuild_package: str | None = None  # pyxis: what pip installs into the container's virtualenv
    container_mounts: tuple[str, ...] = ()  # pyxis: extra SRC:DST[:FLAGS]


def pyxis_image(image: str) -> str:
    """A pinned image in enroot's URI syntax, ``REGISTRY#IMAGE@sha256:…`` (a Docker Hub image keeps
    ``IMAGE@sha256:…``): the registry is the first path part when it has a dot or a port, or is localhost."""
    first, sep, rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return f"{first}#{rest}"
    return image


def _directive_value(value: str, what: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise InputError(f"{what} {value!r}: #SBATCH values cannot be empty or contain whitespace")
    return value


class SlurmScheduler(Scheduler):
    name = "slurm"

    def __init__(self, options: SlurmOptions | None = None, build: BuildArgs | None = None) -> None:
        self.options = options or SlurmOptions()
        self.build = build or BuildArgs()
        if self.options.runner not in RUNNERS:
            raise InputError(f"--slurm-runner {self.options.runner!r}: use one of {', '.join(RUNNERS)}")
        if self.options.runner == "pyxis" and not self.options.trtbuild_package:
            raise InputError(
                "--slurm-runner pyxis needs the package to install into the image",
                hint="pass --trtbuild-package 'trtbuild[postgres]==VERSION' (or a wheel URL)",
            )

    # -- rendering -----------------------------------------------------------------------------------
    def log_dir(self, out_dir: Path) -> Path:
        return (self.options.log_dir or out_dir / "logs").resolve()

    def directives(self, job: FarmJob, out_dir: Path) -> list[str]:
        o = self.options
        gres = f"gpu:{o.gres_type}:{job.gpus}" if o.gres_type else f"gpu:{job.gpus}"
        out = [
            f"--job-name={job.job_name}",
            "--nodes=1",
            "--ntasks=1",
            f"--gres={_directive_value(gres, '--gres-type')}",
            f"--output={_directive_value(str(self.log_dir(out_dir)), '--log-dir')}/%x-%j.log",
            f"--comment=trtbuild-engine-key={job.engine_key}",
        ]
        for flag, value in (("partition", o.partition), ("time", o.time_limit), ("account", o.account)):
            if value:
                out.append(f"--{flag}={_directive_value(value, '--' + flag)}")
        return out

    def pyxis_srun(self, job: FarmJob, argv: list[str], *, first: bool) -> list[str]:
        """One ``srun`` of the job's named pyxis container (the first one imports the image)."""
        mounts = [f"{job.recipe.parent}:{job.recipe.parent}:ro"]
        if self.build.toolchains is not None:
            tc_dir = self.build.toolchains.resolve().parent
            if tc_dir != job.recipe.parent:
                mounts.append(f"{tc_dir}:{tc_dir}:ro")
        mounts += self.options.container_mounts
        srun = ["srun", "--ntasks=1", f"--container-name=trtbuild-{job.short_key}"]
        if first:
            srun.append(f"--container-image={pyxis_image(job.image)}")
        srun += ["--container-writable", f"--container-mounts={','.join(mounts)}", "--container-workdir=/tmp"]
        return [*srun, *argv]

    def script(self, job: FarmJob, out_dir: Path) -> str:
        """The batch script of ``job``: directives, environment (no secret values), the build."""
        q = shlex.join
        lines = ["#!/bin/bash", *(f"#SBATCH {d}" for d in self.directives(job, out_dir))]
        lines += [
            f"# trtbuild farm: recipe {job.name} ({job.recipe}), engine key {job.engine_key}.",
            "# Generated by `trtbuild farm submit`. Secrets come from the job's environment or the env file",
            "# below, never from this script.",
            "set -euo pipefail",
            'export TRTBUILD_FARM_JOB="slurm:${SLURM_JOB_ID}"',
        ]
        if self.options.env_file is not None:
            lines += [f"set -a; . {shlex.quote(str(self.options.env_file))}; set +a"]
        if self.options.runner == "docker":
            lines += [
                'export TRTBUILD_GPU_DEVICES="${SLURM_JOB_GPUS:-}"   # containers get the allocated GPUs',
                "exec " + q(self.build.argv(str(job.recipe), runner="docker")),
            ]
        else:
            python = f"{VENV}/bin/python"
            venv = ["python3", "-m", "venv", "--system-site-packages", VENV]
            pip = [python, "-m", "pip", "install", "--no-cache-dir", self.options.trtbuild_package or ""]
            build = replace(self.build, trtbuild=(f"{VENV}/bin/trtbuild",))
            lines += [
                "# the pinned image gets trtbuild in a virtualenv that sees the image's own packages",
                q(self.pyxis_srun(job, venv, first=True)),
                q(self.pyxis_srun(job, pip, first=False)),
                "exec " + q(self.pyxis_srun(job, build.argv(str(job.recipe), runner="local"), first=False)),
            ]
        return "\n".join(lines) + "\n"

    def _check_env_file(self) -> None:
        path = self.options.env_file
        if path is None:
            return
        if not path.is_file():
            raise InputError(f"--env-file {path}: no such file", hint="it must exist on the nodes too")
        if path.stat().st_mode & 0o077:
            raise InputError(
                f"--env-file {path}: readable by others; it holds secrets", hint=f"chmod 600 {path}"
            )

    def render(self, jobs: list[FarmJob], out_dir: Path) -> list[Path]:
        self._check_env_file()
        scripts = out_dir / "scripts"
        scripts.mkdir(parents=True, exist_ok=True)
        paths = []
        for job in jobs:
            path = scripts / f"{job.job_name}.sbatch"
            path.write_text(self.script(job, out_dir))
            paths.append(path)
        return paths

    # -- the scheduler ---------------------------------------------------------------------------------
    def submit(self, jobs: list[FarmJob], out_dir: Path, on_submitted: OnSubmitted) -> None:
        paths = self.render(jobs, out_dir)
        self.log_dir(out_dir).mkdir(parents=True, exist_ok=True)
        for job, path in zip(jobs, paths, strict=True):
            out = _run(["sbatch", "--parsable", str(path)], f"sbatch of {job.job_name}")
            job_id = out.strip().split(";", 1)[0]
            if not job_id.isdigit():
                raise SchedulerError(f"sbatch answered {out.strip()!r} for {path}, not a job id")
            log = self.log_dir(out_dir) / f"{job.job_name}-{job_id}.log"
            on_submitted(job, Submitted(job_id, str(log)))

    def states(self, job_ids: list[str]) -> dict[str, str]:
        states = dict.fromkeys(job_ids, UNKNOWN)
        if not job_ids:
            return states
        states.update(self._squeue(job_ids))
        missing = [j for j, s in states.items() if s == UNKNOWN]
        if missing:
            states.update(self._sacct(missing))
        return states

    def _squeue(self, job_ids: list[str]) -> dict[str, str]:
        fmt = ["--noheader", "--states=all", "--format=%i|%T"]
        proc = _try(["squeue", *fmt, f"--jobs={','.join(job_ids)}"])
        if proc is None:
            _run(["squeue"], "squeue")  # raises: not a submit host
        assert proc is not None
        if proc.returncode == 0:
            return _parse_states(proc.stdout, job_ids)
        if "Invalid job id" not in proc.stderr:  # the controller is unreachable: say so, guess nothing
            raise SchedulerError(
                f"squeue failed (exit {proc.returncode}): {proc.stderr.strip()}",
                hint="check that slurmctld is up (`sinfo`) and SLURM_CONF points at it",
            )
        found: dict[str, str] = {}
        if len(job_ids) > 1:  # squeue refuses the whole list when one id is unknown: ask one by one
            for job_id in job_ids:
                found.update(self._squeue([job_id]))
        return found

    def _sacct(self, job_ids: list[str]) -> dict[str, str]:
        """Finished jobs squeue forgot (MinJobAge); only where the cluster keeps accounting."""
        proc = _try(
            [
                "sacct",
                "--noheader",
                "--parsable2",
                "--allocations",
                "--format=JobID,State",
                f"--jobs={','.join(job_ids)}",
            ]
        )
        return _parse_states(proc.stdout if proc is not None and proc.returncode == 0 else "", job_ids)

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            _run(["scancel", *job_ids], "scancel")


def _parse_states(text: str, job_ids: list[str]) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id in job_ids and state:
            out[job_id] = SLURM_STATES.get(state.split()[0].rstrip("+"), UNKNOWN)
    return out


def _try(argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    if shutil.which(argv[0]) is None:
        return None
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def _run(argv: list[str], what: str) -> str:
    if shutil.which(argv[0]) is None:
        raise SchedulerError(
            f"{argv[0]} not found: this host is not a Slurm submit host",
            hint="run trtbuild farm on a login node (slurm-client installed, SLURM_CONF "
            "or /etc/slurm/slurm.conf set up), or use --dry-run to write the scripts",
        )
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SchedulerError(
            f"{what} failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout

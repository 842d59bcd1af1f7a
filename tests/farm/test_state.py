"""The farm's job table, the per-key summary and the GPU allocation a Slurm job hands to Docker."""

from __future__ import annotations

import json

import pytest

from trtbuild.errors import InputError, RunnerUnavailable
from trtbuild.farm import state
from trtbuild.farm.api import summarize
from trtbuild.farm.base import Scheduler, Submitted
from trtbuild.farm.slurm import SchedulerError, _parse_states
from trtbuild.runner import DockerRunner, RunSpec


def test_state_keeps_the_latest_job_per_key_and_earlier_ids(tmp_path):
    path = tmp_path / "farm" / "state.json"
    with state.locked(path) as records:
        state.record(
            records,
            engine_key="sha256:k1",
            recipe="/r/a.toml",
            name="a",
            scheduler="slurm",
            job_id="11",
            log="/logs/a-11.log",
        )
    with state.locked(path) as records:
        state.record(
            records,
            engine_key="sha256:k1",
            recipe="/r/a.toml",
            name="a",
            scheduler="slurm",
            job_id="12",
            log="/logs/a-12.log",
        )
    rec = state.load(path)["sha256:k1"]
    assert (rec.job_id, rec.previous, rec.log) == ("12", ["11"], "/logs/a-12.log")
    assert not list(path.parent.glob(".state-*")), "no temp file left behind"


def test_a_failed_update_keeps_the_table(tmp_path):
    path = tmp_path / "state.json"
    with state.locked(path) as records:
        state.record(records, engine_key="k", recipe="r", name="n", scheduler="slurm", job_id="1", log=None)
    with pytest.raises(RuntimeError):
        with state.locked(path) as records:
            records.clear()
            raise RuntimeError("interrupted")
    assert list(state.load(path)) == ["k"]


def test_a_broken_table_is_a_plain_input_error(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="unreadable farm state"):
        state.load(path)
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(InputError, match="version 1"):
        state.load(path)


def test_summary_per_key():
    assert summarize("running", "sha256:a") == "built"  # the registry is the truth about results
    assert summarize(None, None) == "not-submitted"
    assert summarize("succeeded", None) == "failed"
    assert summarize("unknown", None) == "lost"
    assert summarize("cancelled", None) == "cancelled" and summarize("pending", None) == "pending"


def test_slurm_states_map_onto_farm_states():
    text = "5|RUNNING\n6|CANCELLED by 0\n7|COMPLETED\n8|OUT_OF_MEMORY\n9|PENDING\n99|RUNNING\n"
    assert _parse_states(text, ["5", "6", "7", "8", "9"]) == {
        "5": "running",
        "6": "cancelled",
        "7": "succeeded",
        "8": "failed",
        "9": "pending",
    }


def test_docker_runner_uses_the_allocated_gpus(monkeypatch):
    from trtbuild.settings import gpu_devices

    monkeypatch.setenv("TRTBUILD_GPU_DEVICES", "2, 3")
    runner = DockerRunner(gpu_devices=gpu_devices())
    spec = RunSpec(name="s", image="img@sha256:" + "0" * 64, argv=["true"], mounts=[], env={}, gpus=2)
    line = runner.command_line(spec)
    assert line[line.index("--gpus") + 1] == '"device=2,3"'
    with pytest.raises(RunnerUnavailable, match="allocated 2"):
        runner.command_line(RunSpec(name="s", image="i", argv=[], mounts=[], env={}, gpus=4))
    assert "--gpus" not in DockerRunner(gpu_devices=[]).command_line(
        RunSpec(name="s", image="i", argv=[], mounts=[], env={}, gpus=0)
    )


class _RefusesTheSecond(Scheduler):
    """A scheduler that accepts one job, then fails (as sbatch does when the partition goes away)."""

    name = "slurm"

    def render(self, jobs, out_dir):
        return []

    def submit(self, jobs, out_dir, on_submitted):
        on_submitted(jobs[0], Submitted("101", None))
        raise SchedulerError("sbatch of the second job failed")

    def states(self, job_ids):
        return dict.fromkeys(job_ids, "pending")

    def cancel(self, job_ids):
        pass


def test_jobs_accepted_before_a_failure_stay_recorded(tmp_path):
    from registry.api import Registry
    from tests.farm.recipes import write_project
    from trtbuild.farm import api

    toolchains, recipes = write_project(tmp_path)
    registry = Registry.open(f"sqlite:///{tmp_path / 'r.db'}", f"file://{tmp_path / 'store'}")
    path = tmp_path / "farm" / "state.json"
    with pytest.raises(SchedulerError):
        api.submit(
            [str(r) for r in recipes],
            _RefusesTheSecond(),
            registry=registry,
            state_path=path,
            toolchains_path=toolchains,
        )
    assert [r.job_id for r in state.load(path).values()] == ["101"]
    # the recorded job is live: a new submission leaves its key alone
    report = api.submit(
        [str(recipes[0])], _RefusesTheSecond(), registry=registry, state_path=path, toolchains_path=toolchains
    )
    assert report.submitted == [] and [r["job_id"] for r in report.in_flight] == ["101"]
    registry.close()

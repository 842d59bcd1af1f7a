"""The build farm on a real Slurm cluster (slurmctld + slurmd from Debian, one node on 127.0.0.1, GPUs
as a GRES): three recipes -> three sbatch jobs -> three engines built through the Docker Engine with the
toolchain double into the shared registry (PostgreSQL + S3); the same submission again submits nothing;
a job cancelled mid-build leaves no artifact, and the next submission builds its key."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.farm.conftest import write_recipe

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]
TERMINAL = ("built", "failed", "cancelled", "lost")


class Farm:
    def __init__(self, project, state: Path) -> None:
        self.project, self.state = project, state
        self.flags = ["--state", str(state), "--toolchains", str(project.toolchains), *project.build_flags]

    def submit(self, *recipes: Path, extra: tuple[str, ...] = ()) -> dict:
        result = self.project.cli(
            "farm", "submit", "--scheduler", "slurm", *self.flags, *extra, "--json", *map(str, recipes)
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def status(self, *recipes: Path) -> list[dict]:
        result = self.project.cli("farm", "status", "--state", str(self.state), "--json", *map(str, recipes))
        assert result.returncode in (0, 1), result.stderr
        return json.loads(result.stdout)["keys"]

    def wait(self, *recipes: Path, until=TERMINAL, timeout: float = 420) -> list[dict]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            rows = self.status(*recipes)
            if rows and all(
                r["state"] in until and r["job_state"] not in ("pending", "running") for r in rows
            ):
                return rows
            time.sleep(2)
        pytest.fail(f"farm jobs did not finish in {timeout} s: {rows}")


@pytest.fixture
def farm(slurm_cluster, farm_project, tmp_path):
    """A farm with its own job table; whatever a failed test left queued or running is cancelled."""
    farm = Farm(farm_project, tmp_path / "farm" / "state.json")
    yield farm
    if farm.state.exists():
        farm_project.cli("farm", "cancel", "--all", "--state", str(farm.state))


def test_three_recipes_three_jobs_three_engines_then_nothing(farm, farm_project):
    recipes = [
        write_recipe(farm_project, f"tiny-{dtype}", dtype=dtype)
        for dtype in ("float16", "bfloat16", "float32")
    ]
    first = farm.submit(*recipes)
    assert len(first["submitted"]) == 3 and first["built"] == [] and first["in_flight"] == []
    job_ids = {row["engine_key"]: row["job_id"] for row in first["submitted"]}
    assert len(set(job_ids.values())) == 3

    rows = farm.wait(*recipes)
    assert [r["state"] for r in rows] == ["built"] * 3, rows
    assert {r["engine_key"]: r["job_id"] for r in rows} == job_ids
    assert all(r["job_state"] == "succeeded" for r in rows)
    for row in rows:
        result = json.loads(Path(row["log"]).read_text())  # the job's log: `trtbuild build --json`
        assert result["hash"] == row["artifact"] and result["engine_key"] == row["engine_key"]
        shown = json.loads(farm_project.cli("show", row["artifact"], "--json").stdout)
        assert shown["provenance"]["farm_job"] == f"slurm:{row['job_id']}"
        assert any(f["path"] == "trtbuild/build.log" for f in shown["files"]), "step logs travel with it"

    again = farm.submit(*recipes)
    assert again["submitted"] == [] and len(again["built"]) == 3
    assert {r["hash"] for r in again["built"]} == {r["artifact"] for r in rows}


def test_cancelled_job_leaves_nothing_and_is_rebuilt(farm, farm_project, docker_client):
    recipe = write_recipe(farm_project, "tiny-slow", dtype="float16", max_batch_size=3)
    sub = farm.submit(recipe, extra=("--env", "TOOLCHAIN_DOUBLE_SLEEP=120"))
    (row,) = sub["submitted"]
    name = f"trtbuild-build-{row['engine_key'].split(':')[1][:12]}"
    deadline = time.time() + 300
    while not docker_client.containers.list(filters={"name": name}):
        assert time.time() < deadline, f"the build container never started: {farm.status(recipe)}"
        time.sleep(1)

    busy = farm.submit(recipe)  # a live job of the key: nothing new is submitted
    assert busy["submitted"] == [] and [r["job_id"] for r in busy["in_flight"]] == [row["job_id"]]

    cancelled = farm_project.cli("farm", "cancel", "--state", str(farm.state), "--json", str(recipe))
    assert cancelled.returncode == 0, cancelled.stderr
    assert [c["job_id"] for c in json.loads(cancelled.stdout)["cancelled"]] == [row["job_id"]]
    (after,) = farm.wait(recipe, timeout=120)
    assert after["state"] == "cancelled" and after["artifact"] is None
    deadline = time.time() + 60  # the build unwinds on SIGTERM: container removed, lease released
    while docker_client.containers.list(all=True, filters={"name": name}):
        assert time.time() < deadline, "the cancelled job left its build container behind"
        time.sleep(1)
    reg = farm_project.backend.open()
    assert reg.find_by_build_key(row["engine_key"], "engine") is None
    deadline = time.time() + 30
    while not reg.acquire_lease(row["engine_key"], "probe", 5.0):
        assert time.time() < deadline, "the cancelled build kept its lease"
        time.sleep(1)
    reg.release_lease(row["engine_key"], "probe")
    engines = Path(farm_project.backend.env["TRTBUILD_HOME"]) / "work" / "engines"
    assert not (engines.exists() and any(engines.iterdir())), "no half-made engine dir"

    retry = farm.submit(recipe)
    assert [r["engine_key"] for r in retry["submitted"]] == [row["engine_key"]]
    assert retry["submitted"][0]["job_id"] != row["job_id"]
    (done,) = farm.wait(recipe)
    assert done["state"] == "built" and done["artifact"]
    state = json.loads(farm.state.read_text())
    assert state["jobs"][row["engine_key"]]["previous"] == [row["job_id"]]

"""``trtbuild farm`` as functions: submit the missing keys of some recipes, report each key's job and
artifact, cancel jobs. The registry says what is built, the scheduler what its jobs are doing, the state
file (trtbuild.farm.state) which job belongs to which key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trtbuild.farm import state
from trtbuild.farm.base import ACTIVE_STATES, SUCCEEDED, UNKNOWN, FarmJob, Scheduler, Submitted
from trtbuild.farm.select import expand, plan_jobs, select


@dataclass
class SubmitReport:
    """What a submission did with every distinct key of the recipes."""

    submitted: list[dict] = field(default_factory=list)  # recipe, name, engine_key, job_id, log
    built: list[dict] = field(default_factory=list)  # already in the registry: …, hash
    in_flight: list[dict] = field(default_factory=list)  # a job of the key is pending or running: …, job_id
    duplicates: dict[str, str] = field(default_factory=dict)  # recipe -> recipe with the same key
    rendered: list[str] = field(default_factory=list)  # --dry-run: the scripts or manifests written

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _row(job: FarmJob, **more) -> dict:
    return {"recipe": str(job.recipe), "name": job.name, "engine_key": job.engine_key, **more}


def submit(
    patterns: list[str] | tuple[str, ...],
    scheduler: Scheduler,
    *,
    registry,
    state_path: Path,
    toolchains_path: Path | None = None,
    dry_run_dir: Path | None = None,
) -> SubmitReport:
    """One job per engine key of ``patterns`` that the registry lacks and no live job is building."""
    selection = select(patterns, registry, toolchains_path=toolchains_path)
    report = SubmitReport(duplicates=selection.duplicates)
    report.built = [_row(job, hash=h) for job, h in selection.built.values()]
    if dry_run_dir is not None:
        report.rendered = [str(p) for p in scheduler.render(selection.jobs, dry_run_dir)]
        report.submitted = [_row(job, job_id=None, log=None) for job in selection.jobs]
        return report
    with state.locked(state_path, save_on_error=True) as records:
        own = {
            j.engine_key: records[j.engine_key]
            for j in selection.jobs
            if j.engine_key in records and records[j.engine_key].scheduler == scheduler.name
        }
        live = scheduler.states([r.job_id for r in own.values()])
        todo = []
        for job in selection.jobs:
            rec = own.get(job.engine_key)
            if rec is not None and live.get(rec.job_id) in ACTIVE_STATES:
                report.in_flight.append(_row(job, job_id=rec.job_id, state=live[rec.job_id]))
            else:
                todo.append(job)

        def on_submitted(job: FarmJob, sub: Submitted) -> None:
            state.record(
                records,
                engine_key=job.engine_key,
                recipe=str(job.recipe),
                name=job.name,
                scheduler=scheduler.name,
                job_id=sub.job_id,
                log=sub.log,
            )
            report.submitted.append(_row(job, job_id=sub.job_id, log=sub.log))

        if todo:
            scheduler.submit(todo, state_path.parent, on_submitted)
    return report


def summarize(job_state: str | None, artifact: str | None) -> str:
    """One word per key: built, pending, running, failed, cancelled, lost (a job the scheduler forgot
    without an artifact) or not-submitted."""
    if artifact:
        return "built"
    if job_state is None:
        return "not-submitted"
    if job_state == SUCCEEDED:  # `trtbuild build` exits 0 only with the engine published
        return "failed"
    return "lost" if job_state == UNKNOWN else job_state


def status(
    *,
    registry,
    state_path: Path,
    schedulers: dict[str, Scheduler],
    patterns: list[str] | tuple[str, ...] | None = None,
    toolchains_path: Path | None = None,
) -> list[dict]:
    """Per key: recipe, name, key, scheduler, job id, the scheduler's state, the artifact hash, log, and
    a summary state. With ``patterns``: every key of those recipes; else every key in the state file."""
    records = state.load(state_path)
    if patterns:
        jobs, _ = plan_jobs(expand(patterns), toolchains_path=toolchains_path)
        keys = [(j.engine_key, str(j.recipe), j.name) for j in jobs]
    else:
        keys = [(k, r.recipe, r.name) for k, r in records.items()]
    job_states: dict[tuple[str, str], str] = {}
    for name, scheduler in schedulers.items():
        ids = [records[k].job_id for k, _, _ in keys if k in records and records[k].scheduler == name]
        if ids:
            job_states.update({(name, i): s for i, s in scheduler.states(ids).items()})
    rows = []
    for key, recipe, name in keys:
        rec = records.get(key)
        hit = registry.find_by_build_key(key, "engine")
        job_state = job_states.get((rec.scheduler, rec.job_id), UNKNOWN) if rec else None
        artifact = hit.hash if hit is not None else None
        rows.append(
            {
                "recipe": recipe,
                "name": name,
                "engine_key": key,
                "scheduler": rec.scheduler if rec else None,
                "job_id": rec.job_id if rec else None,
                "job_state": job_state,
                "artifact": artifact,
                "log": rec.log if rec else None,
                "state": summarize(job_state, artifact),
            }
        )
    return rows


def cancel(
    *,
    state_path: Path,
    schedulers: dict[str, Scheduler],
    patterns: list[str] | tuple[str, ...] | None = None,
    toolchains_path: Path | None = None,
) -> list[dict]:
    """Cancel the pending or running jobs of the recipes' keys (all keys in the state file when no
    recipes are given); returns what was cancelled."""
    records = state.load(state_path)
    if patterns:
        jobs, _ = plan_jobs(expand(patterns), toolchains_path=toolchains_path)
        wanted = [j.engine_key for j in jobs if j.engine_key in records]
    else:
        wanted = list(records)
    cancelled = []
    for name, scheduler in schedulers.items():
        mine = [records[k] for k in wanted if records[k].scheduler == name]
        live = scheduler.states([r.job_id for r in mine]) if mine else {}
        active = [r for r in mine if live.get(r.job_id) in ACTIVE_STATES]
        scheduler.cancel(sorted({r.job_id for r in active}))
        cancelled += [
            {
                "recipe": r.recipe,
                "name": r.name,
                "engine_key": r.engine_key,
                "scheduler": name,
                "job_id": r.job_id,
                "state": live[r.job_id],
            }
            for r in active
        ]
    return cancelled

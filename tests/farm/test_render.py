"""What the farm hands to schedulers, checked without a cluster: Slurm batch scripts (the pyxis `srun`
line against pyxis' documented option names) and Kubernetes manifests (golden files, validated against
the OpenAPI schema of a current Kubernetes release with kubernetes-validate, offline)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.farm.recipes import PLACEHOLDER_DIGEST, ROOT, write_lock, write_project
from trtbuild.errors import InputError
from trtbuild.farm.base import BuildArgs
from trtbuild.farm.kubernetes import KubernetesOptions, KubernetesScheduler, index_states, parse_indexes
from trtbuild.farm.select import plan_jobs
from trtbuild.farm.slurm import SlurmOptions, SlurmScheduler, pyxis_image

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
K8S_VERSION = "1.37.0"  # the newest schema kubernetes-validate 1.37 ships
# The options pyxis adds to srun (NVIDIA/pyxis wiki, "Usage": srun --help), the only ones we may emit.
PYXIS_OPTIONS = {
    "--container-image",
    "--container-mounts",
    "--container-workdir",
    "--container-name",
    "--container-save",
    "--container-mount-home",
    "--no-container-mount-home",
    "--container-remap-root",
    "--no-container-remap-root",
    "--container-entrypoint",
    "--no-container-entrypoint",
    "--container-writable",
    "--container-readonly",
    "--container-env",
}
SECRET_DB = "postgresql+psycopg://farm:hunter2-secret@db.example:5432/registry"


def golden(name: str, text: str) -> None:
    """Compare with tests/farm/golden/NAME (TRTBUILD_UPDATE_GOLDEN=1 rewrites it)."""
    path = GOLDEN / name
    if os.environ.get("TRTBUILD_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), (
        f"{name} differs from its golden file (TRTBUILD_UPDATE_GOLDEN=1 to accept)"
    )


@pytest.fixture
def farm(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTBUILD_DB_URL", SECRET_DB)  # the submitter's secrets must not leak into files
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-never-written")
    toolchains, recipes = write_project(tmp_path)
    jobs, duplicates = plan_jobs(recipes, toolchains_path=toolchains)
    assert duplicates == {}
    build = BuildArgs(trtbuild=("/opt/venv/bin/trtbuild",), toolchains=toolchains)
    env_file = tmp_path / "secrets" / "registry.env"
    env_file.parent.mkdir()
    env_file.write_text(f"TRTBUILD_DB_URL={SECRET_DB}\n")
    env_file.chmod(0o600)
    return tmp_path, toolchains, recipes, jobs, build, env_file


def _norm(text: str, tmp_path: Path) -> str:
    return text.replace(str(tmp_path), ROOT)


def _no_secrets(text: str) -> None:
    assert "hunter2-secret" not in text and "aws-secret-never-written" not in text


def test_slurm_docker_script(farm):
    tmp_path, _, _, jobs, build, env_file = farm
    scheduler = SlurmScheduler(SlurmOptions(partition="gpu", time_limit="04:00:00", env_file=env_file), build)
    paths = scheduler.render(jobs, tmp_path / "farm")
    assert [p.name for p in paths] == [f"{j.job_name}.sbatch" for j in jobs]
    text = paths[0].read_text()
    _no_secrets(text)
    golden("slurm-docker.sbatch", _norm(text, tmp_path))
    assert "#SBATCH --gres=gpu:4" in text and "#SBATCH --nodes=1" in text
    assert subprocess.run(["bash", "-n", str(paths[0])]).returncode == 0


def test_slurm_pyxis_srun_lines_use_only_pyxis_options(farm):
    tmp_path, _, _, jobs, build, env_file = farm
    options = SlurmOptions(runner="pyxis", env_file=env_file, trtbuild_package="trtbuild[postgres]==0.1.0")
    scheduler = SlurmScheduler(options, build)
    text = scheduler.render(jobs[:1], tmp_path / "farm")[0].read_text()
    _no_secrets(text)
    golden("slurm-pyxis.sbatch", _norm(text, tmp_path))
    sruns = [
        shlex.split(line.removeprefix("exec "))
        for line in text.splitlines()
        if line.startswith(("srun ", "exec srun "))
    ]
    assert len(sruns) == 3
    for argv in sruns:
        used = {
            a.split("=", 1)[0] for a in argv if a.startswith("--container") or a.startswith("--no-container")
        }
        assert used <= PYXIS_OPTIONS, used - PYXIS_OPTIONS
    image = next(a for a in sruns[0] if a.startswith("--container-image="))
    assert image == f"--container-image=nvcr.io#nvidia/tensorrt-llm/release@{PLACEHOLDER_DIGEST}"
    assert sruns[2][-1] == str(jobs[0].recipe) and "--runner" in sruns[2] and "local" in sruns[2]
    assert all(f"--container-name=trtbuild-{jobs[0].short_key}" in argv for argv in sruns)


def test_pyxis_image_uri():
    assert pyxis_image("nvcr.io/nvidia/x@sha256:ab") == "nvcr.io#nvidia/x@sha256:ab"
    assert pyxis_image("127.0.0.1:5000/t/d@sha256:ab") == "127.0.0.1:5000#t/d@sha256:ab"
    assert pyxis_image("localhost/t@sha256:ab") == "localhost#t@sha256:ab"
    assert pyxis_image("library/ubuntu@sha256:ab") == "library/ubuntu@sha256:ab"  # Docker Hub


def test_slurm_refuses_a_readable_env_file(farm):
    tmp_path, _, _, jobs, build, env_file = farm
    env_file.chmod(0o644)
    with pytest.raises(InputError, match="chmod 600"):
        SlurmScheduler(SlurmOptions(env_file=env_file), build).render(jobs, tmp_path / "farm")


def _k8s(build, **kw) -> KubernetesScheduler:
    options = KubernetesOptions(
        namespace="llm-build",
        secret="trtbuild-registry",
        config_map="trtbuild-settings",
        queue="gpu-builds",
        gpu_products=("NVIDIA-H100-80GB-HBM3",),
        trtbuild_package="trtbuild[postgres]==0.1.0",
        **kw,
    )
    return KubernetesScheduler(options, build)


def test_kubernetes_manifests_validate_and_match_golden(farm):
    import kubernetes_validate

    tmp_path, _, _, jobs, build, _ = farm
    paths = _k8s(build).render(jobs, tmp_path / "manifests")
    assert len(paths) == 2  # the TP4 key, and the two TP1 keys in one Indexed Job
    for i, path in enumerate(sorted(paths, key=lambda p: p.read_text().count("recipe.toml"))):
        text = path.read_text()
        _no_secrets(text)
        docs = list(yaml.safe_load_all(text))
        assert [d["kind"] for d in docs] == ["ConfigMap", "Job"]
        for doc in docs:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        golden(f"k8s-group{i}.yaml", _norm(text, tmp_path))
    typo = {**docs[1], "spec": {**docs[1]["spec"], "backoffLimitPerIndx": 2}}  # the validator does bite
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)


def test_kubernetes_job_semantics(farm):
    _, _, _, jobs, build, _ = farm
    manifests = _k8s(build).manifests(jobs)
    name, group, cm, job = next(m for m in manifests if len(m[1]) == 2)
    spec = job["spec"]
    assert (
        spec["completionMode"] == "Indexed" and spec["completions"] == 2 and spec["backoffLimitPerIndex"] == 2
    )
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "FailIndex",
        "onExitCodes": {"containerName": "build", "operator": "In", "values": [2]},
    }
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-builds"
    pod = spec["template"]["spec"]
    main = pod["containers"][0]
    assert main["image"] == group[0].image and "@sha256:" in main["image"]
    assert main["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert {"secretRef": {"name": "trtbuild-registry"}} in main["envFrom"]
    assert main["command"] == ["/opt/trtbuild/venv/bin/trtbuild"]
    assert main["args"][:6] == ["build", "--locked", "--json", "--runner", "local", "--tag"]
    assert main["args"][-1] == "/trtbuild/recipes/$(JOB_COMPLETION_INDEX)/recipe.toml"
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    exprs = {e["key"]: e["values"] for e in terms[0]["matchExpressions"]}
    assert exprs == {
        "nvidia.com/gpu.compute.major": ["9"],
        "nvidia.com/gpu.compute.minor": ["0"],
        "nvidia.com/gpu.product": ["NVIDIA-H100-80GB-HBM3"],
    }
    assert json.loads(job["metadata"]["annotations"]["trtbuild/engine-keys"]) == [j.engine_key for j in group]
    items = {i["path"] for i in pod["volumes"][0]["configMap"]["items"]}
    assert items == {"0/recipe.toml", "0/recipe.lock", "1/recipe.toml", "1/recipe.lock", "toolchains.toml"}
    assert set(cm["data"]) == {"r0.toml", "r0.lock", "r1.toml", "r1.lock", "toolchains.toml"}


def test_kubernetes_refuses_a_local_model(farm, tmp_path):
    _, _, _, jobs, build, _ = farm
    from dataclasses import replace

    local = replace(jobs[1], model_source="file:///models/llama")
    with pytest.raises(InputError, match="a pod cannot read this machine's files"):
        _k8s(build).manifests([local])


def test_index_states_from_job_status():
    assert parse_indexes("0,2-4") == {0, 2, 3, 4} and parse_indexes(None) == set()
    job = {"spec": {"completions": 5}, "status": {"completedIndexes": "0", "failedIndexes": "3"}}
    pods = [
        {
            "metadata": {"labels": {"batch.kubernetes.io/job-completion-index": "1"}},
            "status": {"phase": "Running"},
        }
    ]
    assert index_states(job, pods) == {0: "succeeded", 1: "running", 2: "pending", 3: "failed", 4: "pending"}
    job["status"]["conditions"] = [{"type": "Failed", "status": "True"}]
    assert index_states(job, [])[4] == "failed"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trtbuild", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_cli_dry_run_writes_manifests_and_no_cluster_is_a_plain_error(farm):
    tmp_path, toolchains, recipes, jobs, _, _ = farm
    flags = [
        "--scheduler",
        "kubernetes",
        "--secret",
        "trtbuild-registry",
        "--toolchains",
        str(toolchains),
        "--trtbuild-package",
        "trtbuild[postgres]==0.1.0",
        "--state",
        str(tmp_path / "state.json"),
    ]
    env = {
        "TRTBUILD_DB_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "TRTBUILD_STORE_URL": f"file://{tmp_path / 'store'}",
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
    }
    out = tmp_path / "dry"
    dry = _cli(
        "farm",
        "submit",
        *flags,
        "--dry-run",
        str(out),
        "--json",
        str(tmp_path / "recipes" / "*.toml"),
        env=env,
    )
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert len(report["submitted"]) == 3 and len(report["rendered"]) == 2
    assert not (tmp_path / "state.json").exists(), "a dry run records no jobs"
    real = _cli("farm", "submit", *flags, *map(str, recipes), env=env)
    assert real.returncode == 1 and "no Kubernetes cluster configured" in real.stderr
    assert "--dry-run" in real.stderr and "Traceback" not in real.stderr


def test_cli_refuses_an_unlocked_recipe(farm):
    tmp_path, toolchains, recipes, _, _, _ = farm
    recipes[0].with_suffix(".lock").unlink()
    result = _cli(
        "farm",
        "submit",
        "--scheduler",
        "slurm",
        "--toolchains",
        str(toolchains),
        "--dry-run",
        str(tmp_path / "dry"),
        str(recipes[0]),
        env={"TRTBUILD_DB_URL": f"sqlite:///{tmp_path / 'r.db'}"},
    )
    assert result.returncode == 2 and "no lock file" in result.stderr and "trtbuild lock" in result.stderr


def test_recipes_sharing_a_key_give_one_job(farm):
    tmp_path, toolchains, recipes, _, _, _ = farm
    twin = recipes[1].with_name("same-engine-other-name.toml")
    twin.write_text(recipes[1].read_text().replace('name = "llama-8b-bf16"', 'name = "renamed"'))
    write_lock(twin, toolchains)
    jobs, duplicates = plan_jobs([*recipes, twin], toolchains_path=toolchains)
    assert len(jobs) == 3 and duplicates == {str(twin): str(recipes[1])}

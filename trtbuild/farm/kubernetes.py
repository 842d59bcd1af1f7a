"""Kubernetes backend: one Indexed Job per group of keys that share a pod shape (image, GPU count, GPU
arch), index i building the i-th key; a ConfigMap carries the recipes, their locks, calibration files
and the toolchain pins.

How trtbuild gets into the pinned NVIDIA image: two init containers of that same image (by digest) make
a virtualenv with ``--system-site-packages`` on an emptyDir and ``pip install`` trtbuild into it (from
the index the settings ConfigMap names, e.g. ``PIP_INDEX_URL``); the build container runs
``/opt/trtbuild/venv/bin/trtbuild build --runner local``, so the toolchain steps run on the image's own
TensorRT-LLM, ModelOpt and torch. Registry settings and secrets come from a Secret (and an optional
ConfigMap) through ``envFrom``: never in a manifest. Retries are the Job controller's:
``backoffLimitPerIndex`` per key, a podFailurePolicy that fails an index at once on exit code 2 (invalid
input: retrying cannot help) and does not count disruptions (preemption, node drain).
GPUs: ``nvidia.com/gpu`` limits (the device plugin) on nodes whose GPU feature discovery labels match the
recipe's arch (``nvidia.com/gpu.compute.major``/``.minor``) and, when given, the GPU product
(``nvidia.com/gpu.product``).
Submission and status go through the official ``kubernetes`` client (``trtbuild[farm]``), imported lazily.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from registry.api import digest_of
from trtbuild.errors import InputError, TrtbuildError
from trtbuild.farm.base import (
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

VENV = "/opt/trtbuild/venv"
RECIPES = "/trtbuild/recipes"
WORK = "/trtbuild/work"
CONTAINER = "build"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
CONFIGMAP_LIMIT = 1024 * 1024  # bytes the API server accepts in one ConfigMap
EXIT_INVALID_INPUT = 2  # trtbuild's exit code for invalid input: never worth a retry
SHM_SIZE = "16Gi"  # as the Docker runner gives TensorRT-LLM


class KubernetesUnavailable(TrtbuildError):
    """No cluster to talk to (no kubeconfig, no client library, API errors)."""


@dataclass(frozen=True)
class KubernetesOptions:
    namespace: str = "default"
    secret: str | None = None  # envFrom: TRTBUILD_DB_URL, TRTBUILD_STORE_URL, AWS keys, HF_TOKEN
    config_map: str | None = None  # envFrom, non-secret: AWS_ENDPOINT_URL, PIP_INDEX_URL, …
    queue: str | None = None  # Kueue LocalQueue
    gpu_products: tuple[str, ...] = ()  # nvidia.com/gpu.product values, e.g. NVIDIA-H100-80GB-HBM3
    backoff_limit_per_index: int = 2
    ttl_after_finished_s: int = 7 * 24 * 3600  # the Job controller removes finished Jobs (and their pods)
    trtbuild_package: str | None = None  # what pip installs into the image's virtualenv
    kubeconfig: Path | None = None
    context: str | None = None


def arch_labels(gpu_arch: str) -> dict[str, str]:
    """GPU feature discovery's compute-capability labels of an ``smXY`` arch: sm90 -> major 9, minor 0."""
    from registry.api import arch_number

    try:
        major, minor = divmod(arch_number(gpu_arch), 10)
    except ValueError:
        raise InputError(f"target.gpu_arch {gpu_arch!r}: not an smXY arch") from None
    return {"nvidia.com/gpu.compute.major": str(major), "nvidia.com/gpu.compute.minor": str(minor)}


def parse_indexes(text: str | None) -> set[int]:
    """The Job status' index lists, ``"1,3-5"`` -> {1, 3, 4, 5}."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part.strip():
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def index_states(job: dict, pods: list[dict]) -> dict[int, str]:
    """The state of every index of an Indexed Job (API objects as plain dicts, camelCase)."""
    spec, status = job.get("spec", {}), job.get("status") or {}
    done, failed = parse_indexes(status.get("completedIndexes")), parse_indexes(status.get("failedIndexes"))
    conditions = {c["type"] for c in status.get("conditions") or [] if c.get("status") == "True"}
    running = set()
    for pod in pods:
        meta = pod.get("metadata", {})
        index = (meta.get("labels") or {}).get(INDEX_KEY) or (meta.get("annotations") or {}).get(INDEX_KEY)
        if index is not None and (pod.get("status") or {}).get("phase") == "Running":
            running.add(int(index))
    out = {}
    for i in range(int(spec.get("completions") or 0)):
        if i in done:
            out[i] = SUCCEEDED
        elif i in failed or "Failed" in conditions or "FailureTarget" in conditions:
            out[i] = FAILED
        elif i in running:
            out[i] = RUNNING
        else:
            out[i] = PENDING
    return out


def _group_name(jobs: list[FarmJob], suffix: str = "") -> str:
    """``trtbuild-farm-<digest of the keys>[-<suffix>]``: a submission adds a random suffix, so a group
    submitted again (its Job failed) never collides with the finished Job still kept in the cluster."""
    name = "trtbuild-farm-" + digest_of(sorted(j.engine_key for j in jobs)).split(":", 1)[1][:12]
    return f"{name}-{suffix}" if suffix else name


class KubernetesScheduler(Scheduler):
    name = "kubernetes"

    def __init__(self, options: KubernetesOptions | None = None, build: BuildArgs | None = None) -> None:
        self.options = options or KubernetesOptions()
        # the build container's trtbuild is the virtualenv's; the pins travel in the ConfigMap
        self.build = replace(build or BuildArgs(), trtbuild=(f"{VENV}/bin/trtbuild",))

    # -- rendering -----------------------------------------------------------------------------------
    @staticmethod
    def groups(jobs: list[FarmJob]) -> list[list[FarmJob]]:
        """Jobs sharing a pod shape, in submission order: each group is one Indexed Job."""
        out: dict[tuple[str, int, str], list[FarmJob]] = {}
        for job in jobs:
            out.setdefault((job.image, job.gpus, job.gpu_arch), []).append(job)
        return list(out.values())

    def _labels(self, name: str) -> dict[str, str]:
        labels = {
            "app.kubernetes.io/name": "trtbuild",
            "app.kubernetes.io/component": "farm-build",
            "trtbuild/farm-group": name,
        }
        if self.options.queue:
            labels[QUEUE_LABEL] = self.options.queue
        return labels

    def config_map(self, name: str, jobs: list[FarmJob]) -> tuple[dict, list[dict]]:
        """The ConfigMap with every file the group's jobs read, and the volume items that lay them out as
        ``<index>/recipe.toml``, ``<index>/recipe.lock``, ``<index>/<dataset>`` and ``toolchains.toml``."""
        data: dict[str, str] = {}
        items: list[dict] = []

        def add(key: str, path: Path, where: str) -> None:
            try:
                data[key] = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"{path}: cannot ship it to the pods in a ConfigMap ({exc})") from exc
            items.append({"key": key, "path": where})

        for i, job in enumerate(jobs):
            if job.model_source.startswith("file://"):
                raise InputError(
                    f"{job.recipe}: model.source {job.model_source}: a pod cannot read this machine's files",
                    hint="publish the checkpoint to hf:// or s3:// for a Kubernetes farm (or use Slurm on a "
                    "shared filesystem)",
                )
            add(f"r{i}.toml", job.recipe, f"{i}/recipe.toml")
            add(f"r{i}.lock", job.recipe.with_suffix(".lock"), f"{i}/recipe.lock")
            if job.dataset is not None:
                try:
                    rel = job.dataset.relative_to(job.recipe.parent.resolve())
                except ValueError:
                    raise InputError(
                        f"{job.recipe}: quantization.calibration.dataset {job.dataset} lies "
                        "outside the recipe's folder",
                        hint="keep it beside the recipe",
                    ) from None
                add(f"r{i}-dataset", job.dataset, f"{i}/{rel.as_posix()}")
        if self.build.toolchains is not None:
            add("toolchains.toml", self.build.toolchains, "toolchains.toml")
        size = sum(len(v.encode()) for v in data.values())
        if size > CONFIGMAP_LIMIT:
            raise InputError(
                f"the recipes of {name} need {size} bytes; a ConfigMap holds {CONFIGMAP_LIMIT}",
                hint="move large calibration files to the model's s3:// or hf:// source",
            )
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": self.options.namespace, "labels": self._labels(name)},
            "data": data,
        }
        return cm, items

    def job(self, name: str, jobs: list[FarmJob], items: list[dict]) -> dict:
        """The Indexed Job of one group (index i builds ``jobs[i]``)."""
        o, first = self.options, jobs[0]
        env_from = []
        if o.config_map:
            env_from.append({"configMapRef": {"name": o.config_map}})
        if o.secret:
            env_from.append({"secretRef": {"name": o.secret}})
        install = o.trtbuild_package
        if not install:
            raise InputError(
                "a Kubernetes farm needs the package to install into the image",
                hint="pass --trtbuild-package 'trtbuild[postgres]==VERSION' (or a wheel URL)",
            )
        argv = self.build.argv(f"{RECIPES}/$(JOB_COMPLETION_INDEX)/recipe.toml", runner="local")
        if self.build.toolchains is not None:
            i = argv.index("--toolchains")
            argv[i + 1] = f"{RECIPES}/toolchains.toml"
        venv_mount = {"name": "trtbuild", "mountPath": "/opt/trtbuild"}
        affinity = [
            {"key": k, "operator": "In", "values": [v]} for k, v in arch_labels(first.gpu_arch).items()
        ]
        if o.gpu_products:
            affinity.append(
                {"key": "nvidia.com/gpu.product", "operator": "In", "values": list(o.gpu_products)}
            )
        pod = {
            "restartPolicy": "Never",
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": affinity}]
                    }
                }
            },
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "initContainers": [
                {
                    "name": "make-venv",
                    "image": first.image,
                    "command": ["python3", "-m", "venv", "--system-site-packages", VENV],
                    "volumeMounts": [venv_mount],
                },
                {
                    "name": "install-trtbuild",
                    "image": first.image,
                    "command": [f"{VENV}/bin/python", "-m", "pip", "install", "--no-cache-dir", install],
                    "envFrom": env_from,
                    "volumeMounts": [venv_mount],
                },
            ],
            "containers": [
                {
                    "name": CONTAINER,
                    "image": first.image,
                    "command": argv[:1],
                    "args": argv[1:],
                    "env": [
                        {
                            "name": "JOB_COMPLETION_INDEX",
                            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_KEY}']"}},
                        },
                        {"name": "TRTBUILD_HOME", "value": WORK},
                        {
                            "name": "TRTBUILD_FARM_JOB",
                            "value": f"kubernetes:{o.namespace}/{name}/$(JOB_COMPLETION_INDEX)",
                        },
                    ],
                    "envFrom": env_from,
                    "resources": {"limits": {"nvidia.com/gpu": str(first.gpus)}},  # a quantity
                    "volumeMounts": [
                        {"name": "recipes", "mountPath": RECIPES, "readOnly": True},
                        {**venv_mount, "readOnly": True},
                        {"name": "work", "mountPath": WORK},
                        {"name": "dshm", "mountPath": "/dev/shm"},
                    ],
                }
            ],
            "volumes": [
                {"name": "recipes", "configMap": {"name": name, "items": items}},
                {"name": "trtbuild", "emptyDir": {}},
                {"name": "work", "emptyDir": {}},
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}},
            ],
        }
        labels = self._labels(name)
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": o.namespace,
                "labels": labels,
                "annotations": {
                    "trtbuild/engine-keys": json.dumps([j.engine_key for j in jobs]),
                    "trtbuild/recipes": json.dumps([j.name for j in jobs]),
                },
            },
            "spec": {
                "completionMode": "Indexed",
                "completions": len(jobs),
                "parallelism": len(jobs),
                "backoffLimitPerIndex": o.backoff_limit_per_index,
                "ttlSecondsAfterFinished": o.ttl_after_finished_s,
                "podFailurePolicy": {
                    "rules": [
                        {
                            "action": "FailIndex",
                            "onExitCodes": {
                                "containerName": CONTAINER,
                                "operator": "In",
                                "values": [EXIT_INVALID_INPUT],
                            },
                        },
                        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                    ]
                },
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        }

    def manifests(self, jobs: list[FarmJob], suffix: str = "") -> list[tuple[str, list[FarmJob], dict, dict]]:
        """(name, group jobs, ConfigMap, Job) per group."""
        out = []
        for group in self.groups(jobs):
            name = _group_name(group, suffix)
            cm, items = self.config_map(name, group)
            out.append((name, group, cm, self.job(name, group, items)))
        return out

    def render(self, jobs: list[FarmJob], out_dir: Path) -> list[Path]:
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError as exc:
            raise InputError(
                "writing Kubernetes manifests needs PyYAML", hint="pip install 'trtbuild[farm]'"
            ) from exc

        class Dumper(yaml.SafeDumper):
            def ignore_aliases(self, data) -> bool:  # plain repeated blocks, no &anchors
                return True

        def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:  # files as | blocks
            style = "|" if "\n" in value else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

        Dumper.add_representer(str, text)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, _group, cm, job in self.manifests(jobs):
            path = out_dir / f"{name}.yaml"
            path.write_text(yaml.dump_all([cm, job], Dumper=Dumper, sort_keys=False, width=120))
            paths.append(path)
        return paths

    # -- the cluster ---------------------------------------------------------------------------------------
    def _api(self):
        try:
            from kubernetes import client, config
        except ImportError as exc:
            raise KubernetesUnavailable(
                "the kubernetes Python client is not installed", hint="pip install 'trtbuild[farm]'"
            ) from exc
        try:
            config.load_kube_config(
                config_file=str(self.options.kubeconfig) if self.options.kubeconfig else None,
                context=self.options.context,
            )
        except Exception as kube_exc:  # noqa: BLE001 - ConfigException, missing file: try in-cluster next
            try:
                config.load_incluster_config()
            except Exception:  # noqa: BLE001
                raise KubernetesUnavailable(
                    f"no Kubernetes cluster configured ({kube_exc})",
                    hint="set KUBECONFIG (or --kubeconfig/--context), or write the manifests with --dry-run "
                    "DIR and `kubectl apply -f DIR`",
                ) from None
        return client

    def submit(self, jobs: list[FarmJob], out_dir: Path, on_submitted: OnSubmitted) -> None:
        import uuid

        manifests = self.manifests(jobs, suffix=uuid.uuid4().hex[:6])
        client = self._api()
        core, batch = client.CoreV1Api(), client.BatchV1Api()
        ns = self.options.namespace
        for name, group, cm, job in manifests:
            try:
                core.create_namespaced_config_map(ns, cm)
                created = batch.create_namespaced_job(ns, job)
                owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": created.metadata.uid}
                core.patch_namespaced_config_map(name, ns, {"metadata": {"ownerReferences": [owner]}})
            except client.exceptions.ApiException as exc:
                raise KubernetesUnavailable(
                    f"creating {ns}/{name} failed: {exc.status} {exc.reason}: {(exc.body or '')[:500]}"
                ) from exc
            except ValueError as exc:  # the client's own model checks: a manifest bug, said plainly
                raise KubernetesUnavailable(f"the client refused {ns}/{name}: {exc}") from exc
            for i, farm_job in enumerate(group):
                on_submitted(farm_job, Submitted(f"{ns}/{name}#{i}", f"kubectl logs -n {ns} job/{name}"))

    @staticmethod
    def _split(job_id: str) -> tuple[str, str, int]:
        where, _, index = job_id.partition("#")
        ns, _, name = where.partition("/")
        return ns, name, int(index or 0)

    def states(self, job_ids: list[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        client = self._api()
        core, batch, api = client.CoreV1Api(), client.BatchV1Api(), client.ApiClient()
        out = dict.fromkeys(job_ids, UNKNOWN)
        by_job: dict[tuple[str, str], list[str]] = {}
        for job_id in job_ids:
            ns, name, _ = self._split(job_id)
            by_job.setdefault((ns, name), []).append(job_id)
        for (ns, name), ids in by_job.items():
            try:
                job = api.sanitize_for_serialization(batch.read_namespaced_job(name, ns))
                pods = api.sanitize_for_serialization(
                    core.list_namespaced_pod(ns, label_selector=f"batch.kubernetes.io/job-name={name}")
                ).get("items", [])
            except client.exceptions.ApiException as exc:
                if exc.status == 404:
                    continue  # deleted (TTL, or cancelled): the registry says whether it built
                raise KubernetesUnavailable(f"reading job {ns}/{name}: {exc.status} {exc.reason}") from exc
            per_index = index_states(job, pods)
            for job_id in ids:
                out[job_id] = per_index.get(self._split(job_id)[2], UNKNOWN)
        return out

    def cancel(self, job_ids: list[str]) -> None:
        """Deletes the Jobs holding these keys (a Job cannot stop one index): their other keys stop too."""
        if not job_ids:
            return
        client = self._api()
        batch = client.BatchV1Api()
        for ns, name in sorted({self._split(j)[:2] for j in job_ids}):
            try:
                batch.delete_namespaced_job(name, ns, propagation_policy="Foreground")
            except client.exceptions.ApiException as exc:
                if exc.status != 404:
                    raise KubernetesUnavailable(
                        f"deleting job {ns}/{name}: {exc.status} {exc.reason}"
                    ) from exc

"""``trtbuild farm submit|status|cancel``: the build matrix on Slurm or Kubernetes, one job per engine key
the registry lacks."""

from __future__ import annotations

from pathlib import Path

import click

from trtbuild.commands._common import console, json_option, print_json, short, toolchains_option

state_option = click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The farm's job table (default $TRTBUILD_FARM_STATE, else <cache>/farm/state.json); scripts "
    "and logs go beside it. Share it between the machines that submit.",
)
kubeconfig_options = [
    click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Kubernetes: kubeconfig file (default $KUBECONFIG or ~/.kube/config).",
    ),
    click.option("--context", default=None, help="Kubernetes: kubeconfig context."),
]


def _with(options):
    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def _state_path(explicit: Path | None) -> Path:
    from trtbuild.settings import farm_state_path

    return (explicit or farm_state_path()).resolve()


def _schedulers(kubeconfig: Path | None, context: str | None) -> dict:
    from trtbuild.farm.kubernetes import KubernetesOptions, KubernetesScheduler
    from trtbuild.farm.slurm import SlurmScheduler

    return {
        "slurm": SlurmScheduler(),
        "kubernetes": KubernetesScheduler(KubernetesOptions(kubeconfig=kubeconfig, context=context)),
    }


@click.group("farm")
def command() -> None:
    """Build the engines of many recipes on a Slurm or Kubernetes cluster: one job per engine key the
    registry lacks; every job runs `trtbuild build --locked` against the shared registry."""


@command.command("submit")
@click.argument("recipes", nargs=-1, required=True)
@click.option("--scheduler", type=click.Choice(["slurm", "kubernetes"]), required=True)
@toolchains_option
@state_option
@click.option(
    "--dry-run",
    "dry_run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the job scripts or manifests into DIR; submit nothing.",
)
@click.option(
    "--gpus",
    type=click.IntRange(min=0),
    default=None,
    help="GPUs per build container (default tp × pp); the job always asks for tp × pp.",
)
@click.option(
    "--memlock-limit",
    type=click.IntRange(min=0),
    default=None,
    metavar="BYTES",
    help="Passed to `trtbuild build` (Docker Engines that cannot raise memlock).",
)
@click.option("--timeout", "timeout_s", type=float, default=None, help="Per-step timeout of the builds, s.")
@click.option("--tag", default="latest", show_default=True, help="Tag each engine NAME:TAG.")
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Extra non-secret environment for every build step (secrets: --env-file / --secret).",
)
@click.option(
    "--trtbuild",
    "trtbuild_cmd",
    default=None,
    metavar="PATH",
    help="Slurm + docker: the trtbuild executable on the nodes (default: this Python's -m trtbuild).",
)
@click.option(
    "--trtbuild-package",
    default=None,
    metavar="SPEC",
    help="pyxis and Kubernetes: what pip installs into the image, e.g. 'trtbuild[postgres]==0.1.0'.",
)
@click.option(
    "--slurm-runner",
    type=click.Choice(["docker", "pyxis"]),
    default="docker",
    show_default=True,
    help="Slurm: the Docker Engine of the node, or the pinned image through pyxis.",
)
@click.option("--partition", default=None, help="Slurm partition.")
@click.option("--time", "time_limit", default=None, help="Slurm time limit (e.g. 04:00:00).")
@click.option("--account", default=None, help="Slurm account.")
@click.option("--gres-type", default=None, help="Slurm GPU type: --gres=gpu:TYPE:N.")
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Slurm: where job logs go (default: beside the state file); must be shared with the nodes.",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Slurm: a 0600 file of NAME=VALUE lines (registry URLs, AWS keys, HF_TOKEN) the job sources.",
)
@click.option(
    "--container-mount",
    "container_mounts",
    multiple=True,
    metavar="SRC:DST[:FLAGS]",
    help="Slurm + pyxis: extra --container-mounts entries.",
)
@click.option("--namespace", default="default", show_default=True, help="Kubernetes namespace.")
@click.option("--secret", default=None, help="Kubernetes: Secret with the registry settings (envFrom).")
@click.option("--config-map", default=None, help="Kubernetes: ConfigMap with non-secret settings (envFrom).")
@click.option("--queue", default=None, help="Kubernetes: Kueue LocalQueue (label kueue.x-k8s.io/queue-name).")
@click.option(
    "--gpu-product",
    "gpu_products",
    multiple=True,
    help="Kubernetes: allowed nvidia.com/gpu.product node labels (e.g. NVIDIA-H100-80GB-HBM3).",
)
@click.option(
    "--backoff-limit-per-index",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Kubernetes: retries per key (invalid input, exit 2, is never retried).",
)
@_with(kubeconfig_options)
@json_option
def submit_command(
    recipes: tuple[str, ...],
    scheduler: str,
    toolchains_path: Path | None,
    state_path: Path | None,
    dry_run_dir: Path | None,
    gpus: int | None,
    memlock_limit: int | None,
    timeout_s: float | None,
    tag: str,
    envs: tuple[str, ...],
    trtbuild_cmd: str | None,
    trtbuild_package: str | None,
    slurm_runner: str,
    partition: str | None,
    time_limit: str | None,
    account: str | None,
    gres_type: str | None,
    log_dir: Path | None,
    env_file: Path | None,
    container_mounts: tuple[str, ...],
    namespace: str,
    secret: str | None,
    config_map: str | None,
    queue: str | None,
    gpu_products: tuple[str, ...],
    backoff_limit_per_index: int,
    kubeconfig: Path | None,
    context: str | None,
    as_json: bool,
) -> int:
    """Submit one job per engine key of RECIPES (paths or globs) that the registry lacks."""
    from dataclasses import replace

    from trtbuild.farm import api
    from trtbuild.farm.base import BuildArgs, Scheduler
    from trtbuild.recipe.toolchain import default_toolchains_path
    from trtbuild.secrets import is_credential
    from trtbuild.settings import open_registry

    env = {}
    for item in envs:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise click.BadParameter("use NAME=VALUE (the argument is not shown)", param_hint="--env")
        if is_credential(name, value):  # --env values are written into the scheduler's job scripts
            raise click.BadParameter(
                f"{name} is a credential: it would be written into the job script; "
                "pass it with --env-file (Slurm) or --secret (Kubernetes)",
                param_hint="--env",
            )
        env[name] = value
    toolchains = (toolchains_path or default_toolchains_path()).resolve()
    build = BuildArgs(
        toolchains=toolchains,
        gpus=gpus,
        memlock_limit=memlock_limit,
        step_timeout_s=timeout_s,
        tag=tag,
        extra_env=env,
    )
    if trtbuild_cmd:
        build = replace(build, trtbuild=(trtbuild_cmd,))
    backend: Scheduler
    if scheduler == "slurm":
        from trtbuild.farm.slurm import SlurmOptions, SlurmScheduler

        backend = SlurmScheduler(
            SlurmOptions(
                runner=slurm_runner,
                partition=partition,
                time_limit=time_limit,
                account=account,
                gres_type=gres_type,
                log_dir=log_dir.resolve() if log_dir else None,
                env_file=env_file.resolve() if env_file else None,
                trtbuild_package=trtbuild_package,
                container_mounts=container_mounts,
            ),
            build,
        )
    else:
        from trtbuild.farm.kubernetes import KubernetesOptions, KubernetesScheduler

        if secret is None:
            raise click.UsageError(
                "--scheduler kubernetes needs --secret NAME (the registry settings: "
                "TRTBUILD_DB_URL, TRTBUILD_STORE_URL, AWS keys, HF_TOKEN)"
            )
        backend = KubernetesScheduler(
            KubernetesOptions(
                namespace=namespace,
                secret=secret,
                config_map=config_map,
                queue=queue,
                gpu_products=gpu_products,
                backoff_limit_per_index=backoff_limit_per_index,
                trtbuild_package=trtbuild_package,
                kubeconfig=kubeconfig,
                context=context,
            ),
            build,
        )
    registry = open_registry()
    try:
        report = api.submit(
            recipes,
            backend,
            registry=registry,
            state_path=_state_path(state_path),
            toolchains_path=toolchains,
            dry_run_dir=dry_run_dir,
        )
    finally:
        registry.close()
    if as_json:
        print_json(report.to_dict())
        return 0
    out = console()
    for row in report.built:
        out.print(f"built      {row['name']}  {short(row['engine_key'])}  {row['hash']}")
    for row in report.in_flight:
        out.print(
            f"in flight  {row['name']}  {short(row['engine_key'])}  job {row['job_id']} ({row['state']})"
        )
    verb = "would submit" if dry_run_dir else "submitted"
    for row in report.submitted:
        out.print(
            f"{verb:<10} {row['name']}  {short(row['engine_key'])}"
            + (f"  job {row['job_id']}" if row["job_id"] else "")
        )
    for path in report.rendered:
        out.print(f"wrote {path}")
    out.print(
        f"{len(report.submitted)} job(s) {verb}, {len(report.built)} key(s) already built, "
        f"{len(report.in_flight)} in flight"
    )
    return 0


@command.command("status")
@click.argument("recipes", nargs=-1)
@toolchains_option
@state_option
@_with(kubeconfig_options)
@json_option
def status_command(
    recipes: tuple[str, ...],
    toolchains_path: Path | None,
    state_path: Path | None,
    kubeconfig: Path | None,
    context: str | None,
    as_json: bool,
) -> int:
    """Each key's job state and artifact: the keys of RECIPES, or every key submitted from this state file.
    Exit 1 when a key failed, was cancelled or its job was lost without an artifact."""
    from trtbuild.farm import api
    from trtbuild.settings import open_registry

    registry = open_registry()
    try:
        rows = api.status(
            registry=registry,
            state_path=_state_path(state_path),
            schedulers=_schedulers(kubeconfig, context),
            patterns=recipes or None,
            toolchains_path=toolchains_path,
        )
    finally:
        registry.close()
    if as_json:
        print_json({"keys": rows})
    else:
        out = console()
        for r in rows:
            out.print(
                f"{r['state']:<13} {r['name']}  {short(r['engine_key'])}  "
                f"{r['scheduler'] or '-'} {r['job_id'] or '-'}  {r['artifact'] or ''}"
            )
    return 1 if any(r["state"] in ("failed", "cancelled", "lost") for r in rows) else 0


@command.command("cancel")
@click.argument("recipes", nargs=-1)
@click.option(
    "--all", "cancel_all", is_flag=True, help="Cancel every pending or running job in the state file."
)
@toolchains_option
@state_option
@_with(kubeconfig_options)
@json_option
def cancel_command(
    recipes: tuple[str, ...],
    cancel_all: bool,
    toolchains_path: Path | None,
    state_path: Path | None,
    kubeconfig: Path | None,
    context: str | None,
    as_json: bool,
) -> int:
    """Cancel the pending or running jobs of RECIPES' keys (or --all). A Kubernetes Job holds several keys:
    cancelling one deletes the Job, its other keys too."""
    from trtbuild.farm import api

    if not recipes and not cancel_all:
        raise click.UsageError("name the recipes whose jobs to cancel, or pass --all")
    rows = api.cancel(
        state_path=_state_path(state_path),
        schedulers=_schedulers(kubeconfig, context),
        patterns=recipes or None,
        toolchains_path=toolchains_path,
    )
    if as_json:
        print_json({"cancelled": rows})
    else:
        out = console()
        for r in rows:
            out.print(f"cancelled {r['name']}  {short(r['engine_key'])}  {r['scheduler']} {r['job_id']}")
        out.print(f"{len(rows)} job(s) cancelled")
    return 0

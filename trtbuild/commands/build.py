"""``trtbuild build RECIPE``: the main job."""

from __future__ import annotations

from pathlib import Path

import click

from trtbuild.commands._common import json_option, print_json, short, toolchains_option


def _parse_mount(value: str):
    from trtbuild.runner import Mount

    parts = value.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise click.BadParameter(f"{value!r}: use SRC:DST[:ro|rw]", param_hint="--mount")
    return Mount(
        source=Path(parts[0]).resolve(), target=parts[1], read_only=(len(parts) == 2 or parts[2] == "ro")
    )


@click.command("build")
@click.argument("recipe", type=click.Path(path_type=Path))
@toolchains_option
@click.option("--dry-run", is_flag=True, help="Validate and plan; start nothing.")
@click.option("--locked", is_flag=True, help="Refuse a missing or stale lock file.")
@click.option("--allow-unpinned", is_flag=True, help="Build even when the image or model revision floats.")
@click.option(
    "--runner",
    type=click.Choice(["docker", "local"]),
    default="docker",
    show_default=True,
    help="docker: pinned toolchain containers; local: subprocesses (a CI job inside the NVIDIA image).",
)
@click.option(
    "--gpus", type=click.IntRange(min=0), default=None, help="GPUs per container (default tp × pp)."
)
@click.option(
    "--mount",
    "mounts",
    multiple=True,
    metavar="SRC:DST[:ro|rw]",
    help="Extra mount for every container step (e.g. a model cache).",
)
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Extra environment for every step; the value is secret: masked in every log and output.",
)
@click.option(
    "--env-plain",
    "plain_envs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Like --env, but the value may be shown in logs (credentials such as HF_TOKEN, AWS_* keys, "
    "*_TOKEN, *_PASSWORD or URLs with a password stay masked).",
)
@click.option(
    "--no-accuracy-gate", is_flag=True, help="Publish a quantized checkpoint even if the gate fails."
)
@click.option(
    "--tag", default="latest", show_default=True, help="Tag the engine as NAME:TAG in the registry."
)
@click.option("--timeout", "timeout_s", type=float, default=None, help="Per-step timeout in seconds.")
@click.option(
    "--lease-ttl", type=float, default=120.0, show_default=True, help="Build lease time-to-live, s."
)
@click.option(
    "--memlock-limit",
    type=click.IntRange(min=0),
    default=None,
    metavar="BYTES",
    help="Container memlock ulimit (default unlimited, as TensorRT-LLM wants); only for Docker Engines "
    "that cannot raise it.",
)
@json_option
def command(
    recipe: Path,
    toolchains_path: Path | None,
    dry_run: bool,
    locked: bool,
    allow_unpinned: bool,
    runner: str,
    gpus: int | None,
    mounts: tuple[str, ...],
    envs: tuple[str, ...],
    plain_envs: tuple[str, ...],
    no_accuracy_gate: bool,
    tag: str,
    timeout_s: float | None,
    lease_ttl: float,
    memlock_limit: int | None,
    as_json: bool,
) -> int:
    """Build the TensorRT-LLM engine of RECIPE, or return the one already built for its key."""
    if dry_run:
        from trtbuild.build.plan import plan_recipe
        from trtbuild.build.registry_state import registry_state_or_unknown
        from trtbuild.commands.plan import show_plan

        plan = plan_recipe(recipe, toolchains_path=toolchains_path, locked=locked)
        state = registry_state_or_unknown(plan)
        if as_json:
            print_json(plan.to_dict() | {"registry": state.to_dict()})
        else:
            show_plan(plan, state)
        return 0

    from trtbuild.build.orchestrator import BuildOptions, build_recipe

    env: dict[str, str] = {}
    plain: set[str] = set()
    for flag, items in (("--env", envs), ("--env-plain", plain_envs)):
        for item in items:
            name, eq, value = item.partition("=")
            if not eq or not name:  # never echo the argument: it may be a secret
                raise click.BadParameter("use NAME=VALUE (the argument is not shown)", param_hint=flag)
            env[name] = value
            if flag == "--env-plain":
                plain.add(name)
            else:
                plain.discard(name)

    def stream(line: str) -> None:
        click.echo(click.style(f"│ {line}", dim=True), err=True)

    def event(message: str) -> None:
        click.echo(f"{click.style('›', fg='cyan')} {message}", err=True)

    def json_event(message: str) -> None:  # --json: stdout stays one JSON document; events are lines
        import json

        click.echo(json.dumps({"event": message}), err=True)

    options = BuildOptions(
        runner=runner,
        allow_unpinned=allow_unpinned,
        locked=locked,
        gpus=gpus,
        extra_mounts=[_parse_mount(m) for m in mounts],
        extra_env=env,
        plain_env=plain,
        accuracy_gate=not no_accuracy_gate,
        tag=tag,
        step_timeout_s=timeout_s,
        lease_ttl_s=lease_ttl,
        toolchains_path=toolchains_path,
        memlock_limit=memlock_limit,
        on_line=None if as_json else stream,
        on_event=json_event if as_json else event,
    )
    result = build_recipe(recipe, options)
    if as_json:
        print_json(result.to_dict())
        return 0
    # plain click output: a cache hit should not pay for importing rich
    if result.cache_hit:
        click.echo(
            f"{click.style('cache hit', fg='green')} {result.artifact.name} {result.artifact.hash} "
            f"({result.plan.artifact_kind} key {short(result.plan.artifact_key)}; nothing was built)"
        )
    else:
        click.echo(
            f"{click.style('built', fg='green')} {result.artifact.name} {result.artifact.hash} in "
            f"{result.seconds:.1f} s (steps: {', '.join(result.steps_run)})"
        )
    for warning in result.warnings:  # again at the end, where they are read
        click.echo(f"{click.style('warning:', fg='yellow')} {warning}", err=True)
    return 0

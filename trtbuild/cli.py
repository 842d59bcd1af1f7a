"""The ``trtbuild`` command line: a thin click layer over the Python API.

Subcommands live one per module under ``trtbuild.commands`` and are imported only when invoked, so
``trtbuild --help`` stays instant. Typed errors become plain messages with documented exit codes:
0 ok, 1 failure, 2 invalid input, 130 interrupted.
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

import click

from trtbuild import exit_codes

# verb -> "module:attribute" (one module per verb under trtbuild/commands/), with its one-line help.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("trtbuild.commands.validate:command", "Validate recipes; print every problem found."),
    "plan": ("trtbuild.commands.plan:command", "Show the build plan of a recipe with its content keys."),
    "lock": (
        "trtbuild.commands.lock:command",
        "Resolve image tags and model revisions to pins; write the lock file.",
    ),
    "build": ("trtbuild.commands.build:command", "Build the engine of a recipe (or --dry-run)."),
    "doctor": (
        "trtbuild.commands.doctor:command",
        "Check this host: Docker, NVIDIA runtime, GPUs, drivers, disk, registry.",
    ),
    "matrix": ("trtbuild.commands.matrix:command", "Print a CI build matrix (JSON) for recipes."),
    "farm": (
        "trtbuild.commands.farm:command",
        "Build many recipes on Slurm or Kubernetes: one job per missing engine key.",
    ),
    "bake": ("trtbuild.commands.bake:command", "Bake an engine into a trtllm-serve or Triton serving image."),
    "push": ("trtbuild.commands.push:command", "Push a directory (engine, checkpoint) to the registry."),
    "pull": (
        "trtbuild.commands.pull:command",
        "Pull an artifact by hash, tag or --resolve; verified and atomic.",
    ),
    "ls": ("trtbuild.commands.ls:command", "List artifacts in the registry."),
    "show": ("trtbuild.commands.show:command", "Show one artifact: metadata, provenance, files."),
    "tag": ("trtbuild.commands.tag:command", "Point NAME:TAG at an artifact."),
    "untag": ("trtbuild.commands.untag:command", "Remove NAME:TAG (the artifact stays)."),
    "rm": ("trtbuild.commands.rm:command", "Remove artifacts (not tagged or leased ones, unless --force)."),
    "verify": (
        "trtbuild.commands.verify:command",
        "Check the store holds every blob and manifest the catalog names; --repair from a local copy.",
    ),
    "resolve": ("trtbuild.commands.resolve:command", "Pick the best engine of a name for this host."),
    "gc": ("trtbuild.commands.gc:command", "Remove old untagged artifacts and unreferenced blobs."),
    "autotuner": (
        "trtbuild.commands.autotuner:command",
        "Capture or pull warm-start AutoTuner caches (PyTorch backend), matched to the GPU.",
    ),
    "quantize": (
        "trtbuild.commands.quantize:command",
        "Quantize a HF checkpoint with ModelOpt into a TensorRT-LLM checkpoint.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target[0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup, epilog=exit_codes.SUMMARY, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="trtbuild")
def cli() -> None:
    """Build TensorRT-LLM engines reproducibly, never twice, and pull them by hash."""


def _plain_error(exc: Exception) -> int:
    from rich.console import Console
    from rich.markup import escape

    message = escape(exit_codes.message_of(exc))
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {message}")
    return exit_codes.exit_code_of(exc)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, map typed errors to exit codes (never a traceback), and exit quickly."""
    try:
        _run(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if argv is not None:  # called as a library function (tests): a normal SystemExit
            raise
        _exit_now(code)


def _exit_now(code: int) -> None:
    """Run atexit handlers (temp-dir finalizers included), flush, and skip interpreter teardown: tearing
    down SQLAlchemy, pydantic and rich module state costs ~0.15 s, a third of a cache-hit build."""
    import atexit
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _interrupted(exc: BaseException) -> NoReturn:
    """'interrupted' and what the interrupted operation kept (its message, if it says one); exit 130."""
    cause = exc.__cause__ if isinstance(exc, click.exceptions.Abort) else exc
    click.echo(
        exit_codes.message_of(cause if isinstance(cause, KeyboardInterrupt) else KeyboardInterrupt()),
        err=True,
    )
    sys.exit(exit_codes.INTERRUPTED)


def _run(argv: list[str] | None) -> None:
    import contextlib

    from registry.errors import RegistryError
    from trtbuild.errors import TrtbuildError
    from trtbuild.interrupt import sigterm_interrupts

    # SIGTERM (a cancelled job) is handled like Ctrl-C: the running work stops, cleans up and says what it
    # kept. Only for the real entry point: a library call (tests) keeps its own handlers.
    guard = sigterm_interrupts() if argv is None else contextlib.nullcontext()
    try:
        with guard:
            rv = cli.main(args=argv, prog_name="trtbuild", standalone_mode=False)
    except click.exceptions.Abort as exc:  # click's own Ctrl-C (at a prompt)
        _interrupted(exc)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exit_codes.exit_code_of(exc))
    except (TrtbuildError, RegistryError) as exc:
        sys.exit(_plain_error(exc))
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (trtbuild.errors.Interrupted)
        _interrupted(exc)
    sys.exit(rv if isinstance(rv, int) else exit_codes.OK)

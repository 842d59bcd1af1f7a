"""``trtbuild doctor``: can this host build? One line per check; exit 1 when any check fails."""

from __future__ import annotations

from pathlib import Path

import click

from trtbuild.commands._common import console, json_option, print_json, toolchains_option

MARKS = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[bold red]✗[/]", "skip": "[dim]-[/]"}


@click.command("doctor")
@click.option(
    "--recipe",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Also check disk and RAM against this recipe's model and its toolchain only.",
)
@toolchains_option
@json_option
def command(recipe: Path | None, toolchains_path: Path | None, as_json: bool) -> int:
    """Check Docker, the NVIDIA runtime, GPUs, drivers vs toolchains, disk, RAM and the registry."""
    from rich.markup import escape

    from trtbuild.host.doctor import run_checks

    checks = run_checks(recipe=recipe, toolchains_path=toolchains_path)
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        print_json({"ok": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        out = console()
        width = max(len(c.name) for c in checks)
        for c in checks:
            out.print(f"{MARKS[c.status]} {c.name:<{width}}  {escape(c.detail)}")
            if c.fix and c.status == "fail":
                out.print(f"  {'':<{width}}  [dim]fix: {escape(c.fix)}[/]")
        out.print("[bold red]host not ready[/]" if failed else "[green]host ready[/]")
    return 1 if failed else 0

"""SIGTERM unwinds like Ctrl-C (the one helper of the orchestrator and the runners), and the one
error -> exit code mapping that the CLI and the quantize driver share."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import click

from registry.errors import InvalidReference, NotFound
from trtbuild import exit_codes
from trtbuild.errors import Interrupted, RecipeError, StepFailed, ToolchainError
from trtbuild.quantize.errors import AccuracyGateFailed, ShapeError

REPO = Path(__file__).resolve().parents[2]

# SIGTERM inside the helper must get past `except Exception` (as Ctrl-C does), run `finally`, and leave the
# previous handler in place afterwards.
PROGRAM = """
import os, signal, sys
from trtbuild.errors import Interrupted
from trtbuild.interrupt import sigterm_interrupts
before = signal.getsignal(signal.SIGTERM)
try:
    with sigterm_interrupts():
        try:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
            except Exception:
                print("swallowed")
        finally:
            print("cleanup ran")
except Interrupted as exc:
    print(f"interrupted: {exc}")
print("handler restored", signal.getsignal(signal.SIGTERM) is before)
"""


def test_sigterm_passes_except_exception_and_runs_cleanup():
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, cwd=REPO, timeout=60
    ).stdout
    assert out.splitlines() == [
        "cleanup ran",
        "interrupted: received signal SIGTERM",
        "handler restored True",
    ]


def test_sigterm_in_another_thread_changes_nothing():
    import threading

    from trtbuild.interrupt import sigterm_interrupts

    seen = []

    def worker() -> None:
        with sigterm_interrupts():
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [before]


def test_one_exit_code_mapping():
    code = exit_codes.exit_code_of
    assert code(KeyboardInterrupt()) == code(Interrupted("received signal SIGTERM")) == 130
    assert code(RecipeError([])) == code(ToolchainError("x")) == code(ShapeError([])) == 2
    assert code(InvalidReference("x")) == code(click.UsageError("x")) == 2
    assert code(StepFailed("x")) == code(NotFound("x")) == code(RuntimeError("x")) == 1
    assert code(AccuracyGateFailed("x", report={})) == 1
    assert exit_codes.message_of(KeyboardInterrupt()) == "interrupted"
    assert exit_codes.message_of(Interrupted("received signal SIGTERM")) == (
        "interrupted: received signal SIGTERM"
    )
    assert exit_codes.message_of(ToolchainError("bad pin", hint="fix it")) == "bad pin\n  fix: fix it"

"""Typed errors of the build pipeline. The CLI turns each into a plain message; never a traceback.

Exit codes (``trtbuild.exit_codes``): 0 ok, 1 failure, 2 invalid input (recipe, flags, references),
130 interrupted. Stdlib only, like exit_codes: the quantize driver uses both inside the container.
"""

from __future__ import annotations

from trtbuild.exit_codes import FAILURE, INTERRUPTED, INVALID_INPUT


class TrtbuildError(Exception):
    exit_code = FAILURE
    # the fix shown for an error raised without one: every error the CLI prints has a `fix:` line
    default_hint: str | None = "trtbuild doctor checks this host; TRTBUILD_DEBUG=1 shows where it failed"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint or self.default_hint

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg}\n  fix: {self.hint}" if self.hint else msg


class InputError(TrtbuildError):
    """Invalid input: a recipe, a flag, a reference. Exit code 2."""

    exit_code = INVALID_INPUT
    default_hint = "see the command's --help"


class RecipeIssue:
    """One problem in a recipe: where (file, field), what (value) and how to fix it."""

    __slots__ = ("file", "field", "value", "message", "fix")

    def __init__(self, file: str, field: str, message: str, fix: str, value: object = None) -> None:
        self.file, self.field, self.message, self.fix, self.value = file, field, message, fix, value

    def render(self) -> str:
        shown = "" if self.value is None else f" (got {self.value!r})"
        return f"{self.file}: {self.field}: {self.message}{shown}\n  fix: {self.fix}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "field": self.field,
            "message": self.message,
            "value": self.value,
            "fix": self.fix,
        }


class RecipeError(InputError):
    """A recipe failed validation; carries every issue found, not just the first."""

    def __init__(self, issues: list[RecipeIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(i.render() for i in issues))

    def __str__(self) -> str:
        return "\n".join(i.render() for i in self.issues)


class ToolchainError(InputError):
    default_hint = "fix that toolchain in the pins file (recipes/toolchains.toml or --toolchains)"


class LockError(InputError):
    default_hint = "write the lock again: trtbuild lock RECIPE"


class StepFailed(TrtbuildError):
    """A plan step exited non-zero; the message carries the last log lines."""

    default_hint = (
        "read the step's log (its last lines are above; all of it in the logs folder of the trtbuild work "
        "directory)"
    )


class RunnerUnavailable(TrtbuildError):
    """Docker Engine, NVIDIA runtime or GPU missing."""

    default_hint = "trtbuild doctor says what this host lacks"


class HostMismatch(TrtbuildError):
    """The host cannot build or run this recipe (arch, driver)."""

    default_hint = "build on a host with the recipe's target GPUs and a new enough driver"


class Interrupted(KeyboardInterrupt):
    """SIGTERM while work runs (``trtbuild.interrupt``): unwinds like Ctrl-C, through ``finally`` blocks and
    past ``except Exception``. Exit code 130."""

    exit_code = INTERRUPTED


class StepTimeout(StepFailed):
    """A step ran past its timeout; it was stopped and removed."""

    default_hint = "pass a larger --timeout (seconds per step), or read the step's log"


class ImageUnavailable(RunnerUnavailable):
    """The toolchain image is not present locally and could not be pulled."""

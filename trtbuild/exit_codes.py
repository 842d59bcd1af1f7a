"""Exit codes of ``trtbuild`` and of the quantize driver (``python3 -m trtbuild.quantize``), and the one
mapping from an error to its code and message. Stdlib only: the driver imports it inside the toolchain
container, where nothing but ``trtbuild.quantize``'s own needs is installed.
"""

from __future__ import annotations

OK = 0
FAILURE = 1
INVALID_INPUT = 2
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C; SIGTERM is reported the same way
SUMMARY = "Exit codes: 0 ok, 1 failure, 2 invalid input, 130 interrupted."


def exit_code_of(exc: BaseException) -> int:
    """INTERRUPTED for Ctrl-C and SIGTERM, else the error's own ``exit_code`` (trtbuild, registry and click
    errors carry one), else FAILURE."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    code = getattr(exc, "exit_code", FAILURE)
    return code if isinstance(code, int) else FAILURE


def message_of(exc: BaseException) -> str:
    """The one line (plus the fix, where the error has one) the user sees instead of a traceback; for an
    interrupt, "interrupted" and what the interrupted work said it kept (or which signal stopped it)."""
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted: {exc}" if str(exc) else "interrupted"
    return str(exc)

"""``python3 -m trtbuild.quantize [quantize.py flags]``: the driver's command line (in the toolchain
container, or on the host for the local runner). Settings without a quantize.py flag come from the
environment (see ``trtbuild.quantize.options``).

Exit codes: 0 ok, 1 failure (calibration, export, accuracy gate), 2 invalid input, 130 interrupted.
Errors are one plain message on stderr, never a traceback.
"""

from __future__ import annotations

import sys

from trtbuild import exit_codes
from trtbuild.errors import TrtbuildError
from trtbuild.quantize.options import ArgvError, parse_argv


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        from trtbuild.quantize.options import _parser

        _parser().print_help()
        return 0
    try:
        options = parse_argv(argv)
    except ArgvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.INVALID_INPUT
    from trtbuild.quantize.driver import run_quantize

    try:
        run_quantize(options)
    except TrtbuildError as exc:
        print(f"error: {exit_codes.message_of(exc)}", file=sys.stderr)
        return exit_codes.exit_code_of(exc)
    except KeyboardInterrupt as exc:
        print(exit_codes.message_of(exc), file=sys.stderr)
        return exit_codes.exit_code_of(exc)
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())

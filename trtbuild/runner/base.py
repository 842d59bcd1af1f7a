"""The runner contract: what a plan step asks to run (RunSpec) and what comes back (RunResult).

A runner executes one step's argv inside the toolchain (a Docker container, or the current environment
for a CI job that already runs inside the NVIDIA image), streams its output line by line to a callback
and a log file, enforces a timeout, stops the step on Ctrl-C / SIGTERM, and turns a non-zero exit into
:class:`trtbuild.errors.StepFailed` carrying the last log lines.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from trtbuild.errors import StepFailed, StepTimeout

TAIL_LINES = 20
MASK = "***"
# Secret values shorter than this are not searched for in log lines (masking "1" would garble a log).
_MIN_MASKED_LEN = 4


@dataclass(frozen=True)
class Mount:
    """A host path made visible to the step at ``target``; read-only unless said otherwise."""

    source: Path
    target: str
    read_only: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"source": str(self.source), "target": self.target, "read_only": self.read_only}


@dataclass
class RunSpec:
    """One step to run: argv in ``image`` (None = the current environment) with mounts and env.

    ``gpus``: 0 = no GPU, N = N GPUs, -1 = all GPUs. ``secret_env`` names env vars whose values are
    never printed or logged; ``masked_values`` are further values masked in the output (secrets of the
    caller's environment a tool might print). ``timeout_s``: None = no limit.
    """

    name: str
    image: str | None
    argv: list[str]
    mounts: list[Mount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    secret_env: tuple[str, ...] = ()
    masked_values: tuple[str, ...] = ()
    gpus: int = 0
    workdir: str | None = None
    shm_size: str = "16g"
    timeout_s: float | None = None

    def secret_values(self) -> list[str]:
        """Values of the secret env vars, longest first (so a value containing another masks whole)."""
        vals = {self.env[k] for k in self.secret_env if self.env.get(k)}
        vals |= {v for v in self.masked_values if v}
        return sorted(vals, key=len, reverse=True)

    def shown_env(self) -> dict[str, str]:
        """The env as it may be printed: secret values replaced by ``***``."""
        return {k: (MASK if k in self.secret_env else v) for k, v in self.env.items()}


@dataclass
class RunResult:
    exit_code: int
    seconds: float
    log_path: Path
    tail: list[str]


class Runner(ABC):
    """Executes RunSpecs. Implementations: DockerRunner, LocalRunner."""

    @abstractmethod
    def run(
        self, spec: RunSpec, *, log_path: Path, on_line: Callable[[str], None] | None = None
    ) -> RunResult:
        """Run ``spec`` to completion; return its result or raise a typed error.

        Raises StepFailed (non-zero exit), StepTimeout (timeout), RunnerUnavailable (no engine, no
        NVIDIA runtime, image missing), KeyboardInterrupt / Interrupted (Ctrl-C / SIGTERM; the step
        is stopped and removed first).
        """

    @abstractmethod
    def command_line(self, spec: RunSpec) -> list[str]:
        """The equivalent shell command as argv, secret values masked (for dry runs and logs)."""

    def describe(self, spec: RunSpec) -> str:
        return shlex.join(self.command_line(spec))


def mask_secrets(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if len(s) >= _MIN_MASKED_LEN:
            text = text.replace(s, MASK)
    return text


class LogSink:
    """Splits a byte stream into lines; writes each to the log file, the tail and ``on_line``.

    Secret values are masked before a line goes anywhere. ``\\r`` (progress bars) ends a line too.
    """

    def __init__(
        self,
        log_path: Path,
        *,
        secrets: list[str],
        on_line: Callable[[str], None] | None,
        tail_lines: int = TAIL_LINES,
    ) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._fh: IO[str] = open(log_path, "w", encoding="utf-8", errors="replace")
        self._secrets = secrets
        self._on_line = on_line
        self._buf = b""
        self._lock = threading.Lock()
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self.callback_error: BaseException | None = None

    def header(self, text: str) -> None:
        """A line about the run (not step output): written to the log only, never to the tail."""
        with self._lock:
            for line in mask_secrets(text, self._secrets).splitlines():
                self._fh.write(f"# {line}\n")
            self._fh.flush()

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        *lines, self._buf = re.split(rb"\r\n|\n|\r", self._buf)
        for raw in lines:
            self._emit(raw)

    def close(self) -> None:
        if self._buf:
            self._emit(self._buf)
            self._buf = b""
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def _emit(self, raw: bytes) -> None:
        line = mask_secrets(raw.decode("utf-8", errors="replace"), self._secrets)
        with self._lock:
            if self._fh.closed:
                return
            self._fh.write(line + "\n")
            self._fh.flush()
            self.tail.append(line)
        if self._on_line is not None and self.callback_error is None:
            try:
                self._on_line(line)
            except BaseException as exc:  # a broken display must not kill the reader thread
                self.callback_error = exc


def step_failed(
    spec: RunSpec, exit_code: int, tail: list[str], log_path: Path, *, extra: str = ""
) -> StepFailed:
    shown = "\n".join(f"    {ln}" for ln in tail) or "    (no output)"
    return StepFailed(
        f"step {spec.name!r} failed with exit code {exit_code}{extra}; last {len(tail)} log lines:\n"
        f"{shown}\n  full log: {log_path}",
        hint=f"read {log_path}; fix the cause and run the build again (finished steps are reused)",
    )


def step_timeout(spec: RunSpec, tail: list[str], log_path: Path) -> StepTimeout:
    shown = "\n".join(f"    {ln}" for ln in tail) or "    (no output)"
    return StepTimeout(
        f"step {spec.name!r} ran longer than its timeout of {spec.timeout_s:g} s and was stopped; "
        f"last {len(tail)} log lines:\n{shown}\n  full log: {log_path}",
        hint="raise the step's timeout or look in the log for where it stalled",
    )


def calling_user() -> str:
    """``uid:gid`` of this process: steps run as the caller so outputs belong to the user."""
    return f"{os.getuid()}:{os.getgid()}"

"""LocalRunner: run a RunSpec as a subprocess, for a CI job that already runs inside the NVIDIA image.

Container paths in argv, env values and workdir are translated to the mounts' host sources
(longest-prefix match). Logging, timeout, interrupt and exit semantics are those of DockerRunner;
what a subprocess cannot give is read-only enforcement of mounts (the job's own permissions apply).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from trtbuild.errors import RunnerUnavailable, ToolchainError
from trtbuild.interrupt import sigterm_interrupts
from trtbuild.runner.base import (
    LogSink,
    Mount,
    Runner,
    RunResult,
    RunSpec,
    step_failed,
    step_timeout,
)


class PathTranslator:
    """Maps container paths under mount targets to host paths (longest target first)."""

    def __init__(self, mounts: list[Mount]) -> None:
        self._pairs = sorted(
            ((m.target.rstrip("/") or "/", str(m.source)) for m in mounts),
            key=lambda p: len(p[0]),
            reverse=True,
        )

    def path(self, value: str) -> str:
        """Translate one absolute path; anything else is returned unchanged."""
        if not value.startswith("/"):
            return value
        for target, source in self._pairs:
            if value == target:
                return source
            prefix = target if target.endswith("/") else target + "/"
            if value.startswith(prefix):
                return os.path.join(source, value[len(prefix) :])
        return value

    def arg(self, value: str) -> str:
        """An argv element: a path, or ``--flag=path``."""
        if value.startswith("-") and "=" in value:
            flag, _, rest = value.partition("=")
            return f"{flag}={self.path(rest)}"
        return self.path(value)

    def env_value(self, value: str) -> str:
        """An env value: a path, or a ``:``-separated list of paths (PATH, PYTHONPATH)."""
        if ":" in value and value.startswith("/"):
            return ":".join(self.path(part) for part in value.split(":"))
        return self.path(value)


class LocalRunner(Runner):
    """Runs RunSpecs in the current environment (``spec.image`` is only recorded, not used)."""

    def __init__(self, *, stop_grace_s: float = 10.0, inherit_env: bool = True) -> None:
        self.stop_grace_s = stop_grace_s
        self.inherit_env = inherit_env

    def resolved(self, spec: RunSpec) -> tuple[list[str], dict[str, str], str | None]:
        """argv, env (only the spec's part) and workdir with container paths made host paths."""
        tr = PathTranslator(spec.mounts)
        argv = [tr.arg(a) for a in spec.argv]
        env = {k: tr.env_value(v) for k, v in spec.env.items()}
        if spec.gpus == 0:
            env.setdefault("CUDA_VISIBLE_DEVICES", "")  # as in a container without a GPU request
        workdir = tr.path(spec.workdir) if spec.workdir else None
        return argv, env, workdir

    def command_line(self, spec: RunSpec) -> list[str]:
        argv, env, workdir = self.resolved(spec)
        shown = {k: ("***" if k in spec.secret_env else v) for k, v in env.items()}
        prefix = ["cd", workdir, "&&"] if workdir else []
        return [*prefix, "env", *(f"{k}={v}" for k, v in shown.items()), *argv]

    def run(
        self, spec: RunSpec, *, log_path: Path, on_line: Callable[[str], None] | None = None
    ) -> RunResult:
        argv, env_part, workdir = self.resolved(spec)
        if not argv:
            raise ToolchainError(f"step {spec.name!r}: empty argv")
        for m in spec.mounts:
            if not Path(m.source).exists():
                raise ToolchainError(f"step {spec.name!r}: mount source {m.source} does not exist")
        env = {**(os.environ if self.inherit_env else {}), **env_part}
        sink = LogSink(log_path, secrets=spec.secret_values(), on_line=on_line)
        sink.header(f"step {spec.name}: {self.describe(spec)}")
        start = time.monotonic()
        proc: subprocess.Popen[bytes] | None = None
        reader: threading.Thread | None = None
        try:
            with sigterm_interrupts():
                try:
                    # Own session: the terminal's Ctrl-C reaches us, and we stop the whole step group.
                    proc = subprocess.Popen(
                        argv,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        cwd=workdir,
                        env=env,
                        start_new_session=True,
                    )
                except FileNotFoundError as exc:
                    raise RunnerUnavailable(
                        f"step {spec.name!r}: {argv[0]!r} not found{' in ' + workdir if workdir else ''}"
                        f" ({exc.strerror})",
                        hint="LocalRunner runs inside the toolchain image; use the Docker runner elsewhere",
                    ) from exc
                reader = threading.Thread(
                    target=self._read, args=(proc, sink), daemon=True, name=f"logs-{spec.name}"
                )
                reader.start()
                deadline = None if spec.timeout_s is None else start + spec.timeout_s
                while reader.is_alive() or proc.poll() is None:
                    if deadline is not None and time.monotonic() > deadline:
                        self._stop(proc)
                        proc = None
                        reader.join(5)
                        sink.close()
                        raise step_timeout(spec, list(sink.tail), log_path)
                    if reader.is_alive():
                        reader.join(0.2)
                    else:
                        try:
                            proc.wait(0.2)
                        except subprocess.TimeoutExpired:
                            pass
                code = proc.wait()
                proc = None
                sink.close()
                if code < 0:  # killed by a signal: report as a shell would
                    code = 128 - code
                if sink.callback_error is not None:
                    raise sink.callback_error
                if code != 0:
                    raise step_failed(spec, code, list(sink.tail), log_path)
                return RunResult(
                    exit_code=code, seconds=time.monotonic() - start, log_path=log_path, tail=list(sink.tail)
                )
        finally:
            if proc is not None:
                self._stop(proc)
            if reader is not None:
                reader.join(5)
            sink.close()

    @staticmethod
    def _read(proc: subprocess.Popen[bytes], sink: LogSink) -> None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            sink.feed(chunk)

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM the step's process group, SIGKILL after the grace period; never raises."""
        for sig, wait in ((signal.SIGTERM, self.stop_grace_s), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            except BaseException:
                pass
            try:
                proc.wait(wait)
            except BaseException:  # TimeoutExpired, or a second Ctrl-C: escalate
                continue
        # the group may still hold children that outlived the leader
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

"""DockerRunner: one step = one container of the pinned toolchain image, through the docker SDK.

The image is run by digest (``repo@sha256:…``); a tag is refused unless ``allow_unpinned``. The model
is mounted read-only, only the step output writable (as the RunSpec says). GPUs go through device
requests; shm and ulimits are those TensorRT-LLM needs. The container runs as the calling uid:gid, under
Docker's init so signals reach the tool, and is always removed: on success, failure, timeout, Ctrl-C
and SIGTERM.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trtbuild.docker_engine import (
    NO_GPU_DRIVER_MARKER,
    NVIDIA_RUNTIME_FIX,
    docker_client,
    ensure_image,
    is_no_nvidia_runtime,
    is_pinned,
)
from trtbuild.errors import RunnerUnavailable, ToolchainError
from trtbuild.interrupt import sigterm_interrupts
from trtbuild.runner.base import (
    LogSink,
    Runner,
    RunResult,
    RunSpec,
    calling_user,
    mask_secrets,
    step_failed,
    step_timeout,
)

# TensorRT-LLM's documented container settings: unlimited locked memory, 64 MiB stack.
ULIMITS = {"memlock": (-1, -1), "stack": (67108864, 67108864)}
ULIMITS_FIX = (
    "raise the Docker Engine's own limits: `systemctl edit docker` with LimitMEMLOCK=infinity and "
    "LimitSTACK=infinity under [Service] (or start dockerd from a shell after `ulimit -l unlimited`), then "
    "restart dockerd"
)


def _container_name(step: str) -> str:
    safe = re.sub(r"[^a-zA-Z0-9_.-]+", "-", step).strip("-.") or "step"
    return f"trtbuild-{safe[:40]}-{uuid.uuid4().hex[:8]}"


class DockerRunner(Runner):
    """Runs RunSpecs as containers of the Docker Engine (``DOCKER_HOST`` or the local socket)."""

    def __init__(
        self,
        *,
        client: Any = None,
        allow_unpinned: bool = False,
        user: str | None = None,
        pull: bool = True,
        stop_grace_s: int = 10,
        labels: dict[str, str] | None = None,
        ulimits: dict[str, tuple[int, int]] | None = None,
        gpu_devices: list[str] | None = None,
    ) -> None:
        self._client = client
        # GPUs a scheduler allocated to this job (Slurm: $SLURM_JOB_GPUS): containers get these devices,
        # never "any N GPUs" of a node other jobs share
        self.gpu_devices = list(gpu_devices or [])
        self.allow_unpinned = allow_unpinned
        self.user = user or calling_user()
        self.pull = pull
        self.stop_grace_s = stop_grace_s
        self.labels = dict(labels or {})
        self.ulimits = dict(ULIMITS if ulimits is None else ulimits)

    # ---- engine --------------------------------------------------------------------------------
    def client(self) -> Any:
        """The docker SDK client, connected and answering (else RunnerUnavailable)."""
        if self._client is None:
            self._client = docker_client()
        return self._client

    # ---- spec → docker ---------------------------------------------------------------------------
    def _check_image(self, spec: RunSpec) -> str:
        if not spec.image:
            raise ToolchainError(f"step {spec.name!r}: DockerRunner needs an image (RunSpec.image is None)")
        if not is_pinned(spec.image) and not self.allow_unpinned:
            raise ToolchainError(
                f"step {spec.name!r}: image {spec.image!r} is not pinned to a digest (repo@sha256:…)",
                hint="pin it in toolchains.toml (`trtbuild lock` resolves tags to digests) "
                "or pass --allow-unpinned",
            )
        return spec.image

    def _environment(self, spec: RunSpec) -> dict[str, str]:
        env = dict(spec.env)
        if not self.user.startswith("0:") and "HOME" not in env:
            env["HOME"] = "/tmp"  # an arbitrary uid has no home in the image; tools write caches there
        return env

    def command_line(self, spec: RunSpec) -> list[str]:
        cmd = ["docker", "run", "--rm", "--init", "--user", self.user, "--shm-size", spec.shm_size]
        for name, (soft, hard) in self.ulimits.items():
            cmd += ["--ulimit", f"{name}={soft}:{hard}"]
        if spec.gpus:
            ids = self._device_ids(spec)
            cmd += [
                "--gpus",
                f'"device={",".join(ids)}"' if ids else ("all" if spec.gpus < 0 else str(spec.gpus)),
            ]
        for m in spec.mounts:
            ro = ",readonly" if m.read_only else ""
            cmd += ["--mount", f"type=bind,source={m.source},target={m.target}{ro}"]
        shown = spec.shown_env()
        for k, v in self._environment(spec).items():
            cmd += ["-e", f"{k}={shown.get(k, v)}"]
        if spec.workdir:
            cmd += ["--workdir", spec.workdir]
        cmd += [spec.image or "<no image>", *spec.argv]
        return cmd

    def _create(self, spec: RunSpec, ref: str, name: str) -> Any:
        import docker
        from docker.types import DeviceRequest, Ulimit
        from docker.types import Mount as DockerMount

        for m in spec.mounts:
            if not Path(m.source).exists():
                raise ToolchainError(f"step {spec.name!r}: mount source {m.source} does not exist")
        kwargs: dict[str, Any] = dict(
            image=ref,
            command=list(spec.argv),
            name=name,
            environment=self._environment(spec),
            mounts=[
                DockerMount(
                    target=m.target, source=str(Path(m.source).resolve()), type="bind", read_only=m.read_only
                )
                for m in spec.mounts
            ],
            user=self.user,
            shm_size=spec.shm_size,
            ulimits=[Ulimit(name=n, soft=s, hard=h) for n, (s, h) in self.ulimits.items()],
            init=True,
            labels={"trtbuild.step": spec.name, "trtbuild.pid": str(os.getpid()), **self.labels},
            detach=True,
        )
        if spec.workdir:
            kwargs["working_dir"] = spec.workdir
        if spec.gpus:
            ids = self._device_ids(spec)
            request = (
                DeviceRequest(device_ids=ids, capabilities=[["gpu"]])
                if ids
                else DeviceRequest(count=spec.gpus, capabilities=[["gpu"]])
            )
            kwargs["device_requests"] = [request]
        try:
            return self.client().containers.create(**kwargs)
        except docker.errors.APIError as exc:
            raise self._translate(exc, spec) from exc

    def _device_ids(self, spec: RunSpec) -> list[str]:
        """The allocated GPUs this step gets (its first ``gpus`` of them; all for -1); [] = no allocation."""
        if not self.gpu_devices:
            return []
        if spec.gpus > len(self.gpu_devices):
            raise RunnerUnavailable(
                f"step {spec.name!r} needs {spec.gpus} GPU(s) but the scheduler allocated "
                f"{len(self.gpu_devices)} ({','.join(self.gpu_devices)})",
                hint="request tp × pp GPUs for the job (trtbuild farm does), or pass --gpus",
            )
        return self.gpu_devices if spec.gpus < 0 else self.gpu_devices[: spec.gpus]

    def _translate(self, exc: Exception, spec: RunSpec) -> Exception:
        text = mask_secrets(str(exc), spec.secret_values())
        if "error setting rlimit" in text:
            wanted = ", ".join(f"{n} {'unlimited' if s < 0 else s}" for n, (s, _) in self.ulimits.items())
            return RunnerUnavailable(
                f"the Docker Engine cannot apply the ulimits TensorRT-LLM needs ({wanted}) to step "
                f"{spec.name!r}: its own hard limits are lower (Docker said: {text})",
                hint=ULIMITS_FIX,
            )
        if is_no_nvidia_runtime(text):
            return RunnerUnavailable(
                f"step {spec.name!r} needs {'all' if spec.gpus < 0 else spec.gpus} GPU(s) but the Docker "
                f"Engine has no NVIDIA runtime (Docker said: {NO_GPU_DRIVER_MARKER})",
                hint=NVIDIA_RUNTIME_FIX,
            )
        return RunnerUnavailable(f"the Docker Engine refused to run step {spec.name!r}: {text}")

    # ---- run -----------------------------------------------------------------------------------
    def run(
        self, spec: RunSpec, *, log_path: Path, on_line: Callable[[str], None] | None = None
    ) -> RunResult:
        import docker

        ref = self._check_image(spec)
        ensure_image(self.client(), ref, pull=self.pull)
        sink = LogSink(log_path, secrets=spec.secret_values(), on_line=on_line)
        sink.header(f"step {spec.name}: {self.describe(spec)}")
        start = time.monotonic()
        container = None
        name = _container_name(spec.name)
        reader: threading.Thread | None = None
        try:
            with sigterm_interrupts():
                container = self._create(spec, ref, name)
                try:
                    container.start()
                except docker.errors.APIError as exc:
                    raise self._translate(exc, spec) from exc
                reader = threading.Thread(
                    target=self._read_logs, args=(container, sink), name=f"logs-{spec.name}", daemon=True
                )
                reader.start()
                deadline = None if spec.timeout_s is None else start + spec.timeout_s
                while reader.is_alive():
                    if deadline is not None and time.monotonic() > deadline:
                        self._remove(container)
                        container = None
                        reader.join(5)
                        sink.close()
                        raise step_timeout(spec, list(sink.tail), log_path)
                    reader.join(0.2)
                status = container.wait()
                code = int(status.get("StatusCode", -1))
                oom = self._oom_killed(container)
                sink.close()
                seconds = time.monotonic() - start
                if sink.callback_error is not None:
                    raise sink.callback_error
                if code != 0:
                    extra = " (killed: out of memory)" if oom else ""
                    raise step_failed(spec, code, list(sink.tail), log_path, extra=extra)
                return RunResult(exit_code=code, seconds=seconds, log_path=log_path, tail=list(sink.tail))
        finally:
            if container is None:  # interrupted between create and assignment, or already removed
                container = self._lookup(name)
            if container is not None:
                self._remove(container)
            if reader is not None:
                reader.join(5)
            sink.close()

    @staticmethod
    def _read_logs(container: Any, sink: LogSink) -> None:
        try:
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                sink.feed(chunk)
        except Exception:  # the container was removed under us (timeout / interrupt)
            pass

    @staticmethod
    def _oom_killed(container: Any) -> bool:
        try:
            container.reload()
            return bool(container.attrs.get("State", {}).get("OOMKilled"))
        except Exception:
            return False

    def _lookup(self, name: str) -> Any:
        try:
            return self.client().containers.get(name)
        except Exception:
            return None

    def _remove(self, container: Any) -> None:
        """Stop (SIGTERM, then SIGKILL after the grace period) and remove; never raises."""
        import docker

        try:
            container.reload()
            if container.status in ("running", "restarting", "paused"):
                container.stop(timeout=self.stop_grace_s)
        except docker.errors.NotFound:
            return
        except BaseException:  # a second Ctrl-C during the grace period: remove by force below
            pass
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except Exception:
            pass

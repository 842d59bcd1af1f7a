"""Run a plan: never build a key twice, hold a lease while building, publish only verified engines.

Order of work for ``build_recipe``:
  1. plan (refuse floating references unless allowed) and look the engine key up: a hit returns at once;
  2. take the build lease for the engine key (others wait, then reuse the result);
  3. fingerprint the host through the toolchain and refuse an arch other than the recipe's;
  4. checkpoint: reuse one published under the checkpoint key, else fetch + quantize|convert and publish it;
  5. trtllm-build with the registry's timing cache, verify, publish the engine with its provenance.
Every step writes into a fresh directory removed again if the step fails or is interrupted.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from trtbuild.build.plan import plan_recipe
from trtbuild.errors import HostMismatch, InputError, ToolchainError, TrtbuildError
from trtbuild.fsutil import clean_path_on_failure, fresh_dir
from trtbuild.build.lease import LeaseKeeper, holder_id
from registry.transfer import write_marker
from trtbuild.build.plan import TIMING_CACHE, Plan, Step, with_timing_cache
from trtbuild.build import fetch as fetch_step
from trtbuild.build.verify import verify_engine
from trtbuild.secrets import environ_secrets, secret_names, secret_values

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "generation_config.json", "vocab.json", "merges.txt")
PROVENANCE_DIR = "trtbuild"  # inside a published engine: recipe, lock, logs, verification


@dataclass
class BuildOptions:
    runner: str = "docker"                         # "docker" or "local"
    allow_unpinned: bool = False
    locked: bool = False
    gpus: int | None = None                        # GPUs per container; None = tp × pp
    extra_mounts: list = field(default_factory=list)   # trtbuild.runner.Mount, added to every container step
    extra_env: dict[str, str] = field(default_factory=dict)  # secret, but for plain_env names
    plain_env: set[str] = field(default_factory=set)   # --env-plain: shown in logs (credentials never are)
    lease_ttl_s: float = 120.0
    wait_timeout_s: float = 6 * 3600.0
    poll_s: float = 2.0
    step_timeout_s: float | None = None
    memlock_limit: int | None = None               # bytes; None = unlimited, as TensorRT-LLM wants
    accuracy_gate: bool = True
    tag: str | None = "latest"
    toolchains_path: Path | None = None
    on_line: Callable[[str], None] | None = None
    on_event: Callable[[str], None] | None = None


@dataclass
class BuildResult:
    artifact: object                               # registry.api.Artifact
    plan: Plan
    cache_hit: bool
    steps_run: list[str]
    seconds: float
    waited_for: str | None = None                  # holder of the lease we waited on

    def to_dict(self) -> dict:
        return {"hash": self.artifact.hash, "name": self.artifact.name, "engine_key": self.plan.engine_key,
                "checkpoint_key": self.plan.checkpoint_key, "cache_hit": self.cache_hit,
                "steps_run": self.steps_run, "seconds": round(self.seconds, 3), "waited_for": self.waited_for}


def build_recipe(recipe_path: Path | str, options: BuildOptions | None = None, *, registry=None) -> BuildResult:
    """Build ``recipe_path`` into a verified, published engine (or return the one already published)."""
    options = options or BuildOptions()
    started = time.monotonic()
    plan = plan_recipe(recipe_path, toolchains_path=options.toolchains_path, locked=options.locked)
    if plan.pins.floating and not options.allow_unpinned:
        raise InputError(f"{plan.recipe.path}: refusing to build floating references: "
                         + "; ".join(plan.pins.floating),
                         hint=f"run `trtbuild lock {plan.recipe.path}` (or pass --allow-unpinned)")
    if registry is None:
        from registry.api import Registry

        registry = Registry.open()
    hit = registry.find_by_build_key(plan.engine_key, "engine")
    if hit is not None:
        return BuildResult(hit, plan, True, [], time.monotonic() - started)
    return _Build(plan, options, registry, started).run()


class _Build:
    def __init__(self, plan: Plan, options: BuildOptions, registry, started: float) -> None:
        self.plan, self.options, self.registry, self.started = plan, options, registry, started
        self.recipe = plan.recipe.recipe
        self.steps_run: list[str] = []
        self.logs: list[Path] = []
        self.runner = _make_runner(options.runner, allow_unpinned=options.allow_unpinned,
                                   memlock_limit=options.memlock_limit)

    def event(self, message: str) -> None:
        if self.options.on_event:
            self.options.on_event(message)

    # -- lease ---------------------------------------------------------------------------------------------
    def run(self) -> BuildResult:
        key, holder = self.plan.engine_key, holder_id()
        waited_for = None
        deadline = time.monotonic() + self.options.wait_timeout_s
        while not self.registry.acquire_lease(key, holder, self.options.lease_ttl_s):
            waited_for = waited_for or "another builder"
            if time.monotonic() > deadline:
                raise TrtbuildError(f"gave up waiting for another builder of {key}",
                                    hint="check `trtbuild ls`; the other build may be stuck (its lease expires)")
            self.event("another builder holds the lease for this engine key; waiting")
            time.sleep(self.options.poll_s)
            hit = self.registry.find_by_build_key(key, "engine")
            if hit is not None:
                return BuildResult(hit, self.plan, True, [], time.monotonic() - self.started, waited_for)
        keeper = LeaseKeeper(self.registry, key, holder, self.options.lease_ttl_s).start()
        try:
            with _sigterm_as_interrupt():
                hit = self.registry.find_by_build_key(key, "engine")  # finished while we were acquiring
                if hit is not None:
                    return BuildResult(hit, self.plan, True, [], time.monotonic() - self.started, waited_for)
                artifact = self._build()
                if keeper.lost:
                    self.event("the build lease expired during the build (catalog unreachable for a while): "
                               "another builder may have built this key too; content addressing keeps both intact")
        finally:
            keeper.release()
        return BuildResult(artifact, self.plan, False, self.steps_run, time.monotonic() - self.started, waited_for)

    # -- steps ---------------------------------------------------------------------------------------------
    def _build(self):
        from trtbuild.host.fingerprint import collect_fingerprint

        build_step = self.plan.step("build")
        fingerprint = collect_fingerprint(self.runner, build_step.image, gpus=self._gpus(build_step),
                                          extra_env=self.options.extra_env, extra_mounts=self.options.extra_mounts,
                                          secret_env=self._secret_env(), masked=self._masked())
        self._check_host(fingerprint)
        self._check_toolchain(fingerprint)
        checkpoint_dir = self._checkpoint(fingerprint)
        engine_dir, verification = self._engine(build_step, checkpoint_dir)
        return self._publish(engine_dir, verification, fingerprint)

    def _check_host(self, fingerprint) -> None:
        target = self.recipe.target.gpu_arch
        if fingerprint.gpu_arch and fingerprint.gpu_arch != target:
            raise HostMismatch(f"this host's GPUs are {fingerprint.gpu_name} ({fingerprint.gpu_arch}); "
                               f"the recipe targets {target}",
                               hint="build on a host with the target GPUs, or change target.gpu_arch")
        if not fingerprint.gpu_arch:
            self.event("no GPU seen by the toolchain: engine arch not checked against the host")

    def _check_toolchain(self, fingerprint) -> None:
        tc = self.plan.recipe.toolchain
        found = fingerprint.trtllm_version
        if found and found != tc.trtllm_version:
            raise ToolchainError(f"{self.plan.pins.image} contains TensorRT-LLM {found}, but toolchain {tc.name} "
                                 f"pins {tc.trtllm_version}",
                                 hint="fix the image or trtllm_version of this toolchain in toolchains.toml")

    def _checkpoint(self, fingerprint) -> Path:
        step = self.plan.checkpoint_step
        dest = self.plan.dirs.checkpoint
        found = self.registry.find_by_build_key(self.plan.checkpoint_key, "checkpoint")
        if found is not None:
            self.event(f"checkpoint {self.plan.checkpoint_key[:19]} found in the registry: skipping fetch and "
                       f"{step.kind}")
            self.registry.pull(found.hash, dest)
            return dest
        model_dir = self._fetch()
        with clean_path_on_failure(fresh_dir(dest)):
            self._run(step)
            _copy_tokenizer(model_dir, dest)
        artifact = self.registry.push(dest, name=f"{self.recipe.name}-checkpoint", kind="checkpoint",
                                      build_key=self.plan.checkpoint_key, metadata=self._identity(step),
                                      provenance={"host": socket.gethostname(), "fingerprint": fingerprint.to_dict()})
        # the directory now holds exactly that artifact: a later pull into it is a no-op
        write_marker(dest, artifact.hash, artifact.name, artifact.kind, artifact.size, len(artifact.files))
        return dest

    def _fetch(self) -> Path:
        step, model = self.plan.step("fetch"), self.recipe.model
        if model.scheme == "file":
            return Path(model.location)
        dest = self.plan.dirs.model
        marker = dest / ".trtbuild-fetched"
        if marker.exists() and marker.read_text() == step.key:
            return dest
        with clean_path_on_failure(fresh_dir(dest)):
            self.event(f"fetching {model.source}@{step.params.get('revision')}")
            if model.scheme == "hf":
                fetch_step.fetch_hf(model.location, step.params["revision"], dest, step.params["allow_patterns"])
            else:
                fetch_step.fetch_s3(model.location, dest)
            marker.write_text(step.key)
        self.steps_run.append("fetch")
        return dest

    def _engine(self, step: Step, checkpoint_dir: Path) -> tuple[Path, dict]:
        cache_dir = fresh_dir(self.plan.dirs.cache)
        argv = step.argv
        if self._pull_timing_cache(cache_dir / TIMING_CACHE):
            argv = with_timing_cache(argv)
        engine_dir = self.plan.dirs.engine
        with clean_path_on_failure(fresh_dir(engine_dir)):
            self._run(step, argv=argv)
            verification = verify_engine(engine_dir, self.plan.step("verify").params["expect"]).to_dict()
            self.steps_run.append("verify")
            _copy_tokenizer(checkpoint_dir, engine_dir / "tokenizer")
            self._write_provenance(engine_dir, verification)
        self._push_timing_cache(cache_dir / TIMING_CACHE)
        return engine_dir, verification

    def _run(self, step: Step, *, argv: list[str] | None = None) -> None:
        from trtbuild.runner import Mount, RunSpec

        mounts = [Mount(source=Path(m.source), target=m.target, read_only=m.read_only) for m in step.mounts]
        for m in mounts:
            if not m.read_only:
                m.source.mkdir(parents=True, exist_ok=True)
        env = dict(step.env)
        if step.kind == "quantize" and not self.options.accuracy_gate:
            from trtbuild.quantize.options import ENV_GATE

            env[ENV_GATE] = "0"  # --no-accuracy-gate: the driver measures and reports, and does not fail
        for name, value in self.options.extra_env.items():
            env[name] = f"{env[name]}:{value}" if name == "PYTHONPATH" and name in env else value
        log_path = self.plan.dirs.logs / f"{step.kind}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        spec = RunSpec(name=f"trtbuild-{step.kind}-{step.key.split(':')[1][:12]}", image=step.image,
                       argv=list(argv or step.argv), mounts=[*mounts, *self.options.extra_mounts], env=env,
                       secret_env=self._secret_env(), masked_values=self._masked(),
                       gpus=self._gpus(step), timeout_s=self.options.step_timeout_s)
        self.event(f"running {step.kind} in {step.image}")
        self.runner.run(spec, log_path=log_path, on_line=self.options.on_line)
        self.logs.append(log_path)
        self.steps_run.append(step.kind)

    def _secret_env(self) -> tuple[str, ...]:
        """--env names whose values never reach a log or an output: all but --env-plain ones."""
        return secret_names(self.options.extra_env, self.options.plain_env)

    def _masked(self) -> tuple[str, ...]:
        """Values masked in step output: the secret --env values (a PYTHONPATH value is merged with the
        step's own) and the credentials of this process's environment."""
        return secret_values(self.options.extra_env, self._secret_env()) + environ_secrets()

    def _gpus(self, step: Step) -> int:
        return step.gpus if self.options.gpus is None else self.options.gpus

    # -- timing cache ----------------------------------------------------------------------------------------
    def _timing_cache_name(self) -> str:
        tc = self.plan.recipe.toolchain
        version = f"trt{tc.tensorrt_version}" if tc.tensorrt_version else f"trtllm{tc.trtllm_version}"
        return re.sub(r"[^A-Za-z0-9._-]", "-", f"timing-cache-{self.recipe.target.gpu_arch}-{version}")

    def _pull_timing_cache(self, path: Path) -> bool:
        from registry.errors import NotFound

        try:
            found = self.registry.get(f"{self._timing_cache_name()}:latest")
        except NotFound:
            return False
        tmp = path.parent / "pulled"
        self.registry.pull(found.hash, tmp)
        shutil.copyfile(tmp / TIMING_CACHE, path)
        return True

    def _push_timing_cache(self, path: Path) -> None:
        if not path.is_file():
            return
        staging = fresh_dir(path.parent / "push")
        shutil.copyfile(path, staging / TIMING_CACHE)
        self.registry.push(staging, name=self._timing_cache_name(), kind="timing-cache", tag="latest",
                           metadata={"gpu_arch": self.recipe.target.gpu_arch,
                                     "tensorrt_version": self.plan.recipe.toolchain.tensorrt_version,
                                     "trtllm_version": self.plan.recipe.toolchain.trtllm_version})

    # -- publish ---------------------------------------------------------------------------------------------
    def _identity(self, step: Step) -> dict:
        """Manifest metadata: what the artifact *is*; per-build facts go to provenance."""
        r, tc = self.recipe, self.plan.recipe.toolchain
        return {
            "build_key": step.key, "recipe_name": r.name, "model_source": r.model.source,
            "model_revision": self.plan.pins.revision, "dtype": r.model.dtype, "quant_format": r.quantization.format,
            "kv_cache_quant": r.quantization.kv_cache, "tp": r.parallelism.tp, "pp": r.parallelism.pp,
            "max_batch_size": r.limits.max_batch_size, "max_input_len": r.limits.max_input_len,
            "max_seq_len": r.limits.max_seq_len, "max_num_tokens": r.limits.max_num_tokens,
            "max_beam_width": r.limits.max_beam_width, "gpu_arch": r.target.gpu_arch, "toolchain": tc.name,
            "toolchain_image": self.plan.pins.image, "trtllm_version": tc.trtllm_version,
            "tensorrt_version": tc.tensorrt_version, "cuda_version": tc.cuda_version,
            "modelopt_version": tc.modelopt_version,
        }

    def _write_provenance(self, engine_dir: Path, verification: dict) -> None:
        prov = engine_dir / PROVENANCE_DIR
        prov.mkdir()
        shutil.copyfile(self.plan.recipe.path, prov / "recipe.toml")
        lock = self.plan.recipe.path.with_suffix(".lock")
        if lock.exists() and self.plan.pins.lock_state == "fresh":
            shutil.copyfile(lock, prov / "recipe.lock")
        for log in self.logs:
            shutil.copyfile(log, prov / log.name)
        (prov / "verify.json").write_text(json.dumps(verification, indent=2))
        (prov / "plan.json").write_text(json.dumps(self.plan.to_dict(), indent=2))

    def _publish(self, engine_dir: Path, verification: dict, fingerprint):
        provenance = {
            "host": socket.gethostname(), "gpu_name": fingerprint.gpu_name,
            "driver_version": fingerprint.driver_version, "fingerprint": fingerprint.to_dict(),
            "build_seconds": round(time.monotonic() - self.started, 3), "verification": verification,
            "steps_run": self.steps_run, "checkpoint_key": self.plan.checkpoint_key,
        }
        artifact = self.registry.push(engine_dir, name=self.recipe.name, kind="engine",
                                      build_key=self.plan.engine_key, metadata=self._identity(self.plan.step("build")),
                                      provenance=provenance, tag=self.options.tag)
        self.steps_run.append("publish")
        return artifact


def _make_runner(kind: str, *, allow_unpinned: bool, memlock_limit: int | None):
    from trtbuild.runner import DockerRunner, LocalRunner
    from trtbuild.runner.docker import ULIMITS

    if kind == "docker":
        ulimits = None if memlock_limit is None else {**ULIMITS, "memlock": (memlock_limit, memlock_limit)}
        return DockerRunner(allow_unpinned=allow_unpinned, ulimits=ulimits)
    if kind == "local":
        return LocalRunner()
    raise InputError(f"--runner {kind!r}: unknown runner", hint="use --runner docker or --runner local")


def _copy_tokenizer(src: Path, dest: Path) -> None:
    files = [src / name for name in TOKENIZER_FILES if (src / name).is_file()]
    if not files:
        return
    dest.mkdir(parents=True, exist_ok=True)
    for path in files:
        if path.parent != dest:
            shutil.copyfile(path, dest / path.name)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled) unwinds like Ctrl-C: containers stop, the lease is released."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

"""Fixtures of the runner tests: a live Docker Engine, the toolchain double, a tiny Llama."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.toolchain_double.fixture import docker_client, make_tiny_llama, toolchain_double  # noqa: F401
from trtbuild.runner import DockerRunner


@pytest.fixture
def run_label() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def engine_ulimits(docker_client, toolchain_double):  # noqa: F811
    """None when the Docker Engine applies TensorRT-LLM's ulimits (memlock unlimited); otherwise the
    ulimits it can apply (memlock lowered to this host's hard limit), so the other tests still run.
    Sandboxed hosts without CAP_SYS_RESOURCE cannot raise memlock; test_ulimits covers that case."""
    import resource
    import tempfile

    from trtbuild.errors import RunnerUnavailable
    from trtbuild.runner import RunSpec
    from trtbuild.runner.docker import ULIMITS

    spec = RunSpec(name="ulimit-probe", image=toolchain_double["1.1.0"], argv=["true"], mounts=[], env={})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            DockerRunner().run(spec, log_path=Path(tmp) / "probe.log")
        return None
    except RunnerUnavailable as exc:
        if "cannot apply the ulimits" not in str(exc):
            raise
        hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
        return {**ULIMITS, "memlock": (hard, hard)}


@pytest.fixture
def make_runner(engine_ulimits, run_label):
    """DockerRunner factory: per-test label, the ulimits this engine can apply."""

    def make(**kw) -> DockerRunner:
        kw.setdefault("labels", {"trtbuild.test": run_label})
        kw.setdefault("ulimits", engine_ulimits)
        kw.setdefault("stop_grace_s", 5)
        return DockerRunner(**kw)

    return make


@pytest.fixture
def runner(docker_client, run_label, make_runner) -> DockerRunner:  # noqa: F811
    """A DockerRunner whose containers carry a per-test label; asserts none is left behind."""
    r = make_runner()
    yield r
    left = docker_client.containers.list(all=True, filters={"label": f"trtbuild.test={run_label}"})
    for c in left:
        c.remove(force=True)
    assert not left, f"containers left behind: {[c.name for c in left]}"


@pytest.fixture
def double(toolchain_double) -> str:  # noqa: F811
    """The pinned ref of the 1.1.0 double."""
    return toolchain_double["1.1.0"]


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return make_tiny_llama(
        tmp_path_factory.mktemp("models") / "tiny-llama", rope_scaling={"rope_type": "linear", "factor": 2.0}
    )


def containers_with_label(client, label: str) -> list:
    return client.containers.list(all=True, filters={"label": f"trtbuild.test={label}"})

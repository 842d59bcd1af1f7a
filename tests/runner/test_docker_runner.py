"""DockerRunner against the real Docker Engine and the toolchain double image."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.runner.conftest import containers_with_label
from trtbuild.errors import ImageUnavailable, RunnerUnavailable, StepFailed, StepTimeout, ToolchainError
from trtbuild.runner import DockerRunner, Mount, RunSpec

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


def py(code: str) -> list[str]:
    return ["python3", "-c", textwrap.dedent(code)]


def test_streams_lines_live_and_saves_the_log(runner, double, tmp_path):
    seen: list[tuple[float, str]] = []
    spec = RunSpec(
        name="stream",
        image=double,
        argv=py("""
        import time
        for i in range(3):
            print(f"line {i}", flush=True)
            time.sleep(0.6)
        """),
        mounts=[],
        env={},
    )
    res = runner.run(
        spec,
        log_path=tmp_path / "logs" / "stream.log",
        on_line=lambda ln: seen.append((time.monotonic(), ln)),
    )
    assert res.exit_code == 0 and [ln for _, ln in seen] == ["line 0", "line 1", "line 2"]
    assert seen[2][0] - seen[0][0] > 0.9, "lines must arrive while the step runs, not at the end"
    log = (tmp_path / "logs" / "stream.log").read_text().splitlines()
    assert log[0].startswith("# step stream: docker run") and double in log[0]
    assert [ln for ln in log if not ln.startswith("# ")] == ["line 0", "line 1", "line 2"]
    assert res.tail == ["line 0", "line 1", "line 2"] and res.seconds > 1.0


def test_read_only_mount_is_enforced_and_output_is_writable(runner, double, tmp_path):
    model, out = tmp_path / "model", tmp_path / "out"
    model.mkdir(), out.mkdir()
    (model / "config.json").write_text("{}")
    mounts = [Mount(model, "/model"), Mount(out, "/out", read_only=False)]
    runner.run(
        RunSpec(
            name="write-out", image=double, argv=py("open('/out/ok', 'w').write('x')"), mounts=mounts, env={}
        ),
        log_path=tmp_path / "a.log",
    )
    assert (out / "ok").read_text() == "x"
    assert (out / "ok").stat().st_uid == os.getuid(), "outputs belong to the calling user"
    with pytest.raises(StepFailed) as err:
        runner.run(
            RunSpec(
                name="write-model", image=double, argv=py("open('/model/evil', 'w')"), mounts=mounts, env={}
            ),
            log_path=tmp_path / "b.log",
        )
    assert "Read-only file system" in str(err.value)
    assert not (model / "evil").exists()


def test_runs_as_the_given_uid_gid(docker_client, double, tmp_path, run_label, make_runner):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    r = make_runner(user="4321:4322")
    lines: list[str] = []
    r.run(
        RunSpec(
            name="uid",
            image=double,
            argv=py("""
        import os; print(os.getuid(), os.getgid(), os.environ['HOME']); open('/out/f', 'w').write('x')"""),
            mounts=[Mount(out, "/out", read_only=False)],
            env={},
        ),
        log_path=tmp_path / "l",
        on_line=lines.append,
    )
    assert lines == ["4321 4322 /tmp"]
    assert ((out / "f").stat().st_uid, (out / "f").stat().st_gid) == (4321, 4322)
    assert not containers_with_label(docker_client, run_label)


def test_shm_and_ulimits_are_those_trtllm_needs(runner, double, tmp_path, engine_ulimits, run_label):
    spec = RunSpec(
        name="limits",
        image=double,
        argv=py("""
        import os, resource
        print(resource.getrlimit(resource.RLIMIT_MEMLOCK)[0])
        print(resource.getrlimit(resource.RLIMIT_STACK)[0])
        st = os.statvfs('/dev/shm'); print(st.f_blocks * st.f_frsize)
        """),
        mounts=[],
        env={},
        shm_size="1g",
    )
    if engine_ulimits is not None:
        # this engine cannot raise memlock (no CAP_SYS_RESOURCE): the default runner says so plainly
        with pytest.raises(RunnerUnavailable) as err:
            DockerRunner(labels={"trtbuild.test": run_label}).run(spec, log_path=tmp_path / "d")
        assert "memlock unlimited" in str(err.value) and "LimitMEMLOCK=infinity" in str(err.value)
    lines: list[str] = []
    runner.run(spec, log_path=tmp_path / "l", on_line=lines.append)
    memlock = "-1" if engine_ulimits is None else str(engine_ulimits["memlock"][0])
    assert lines == [memlock, "67108864", str(1024**3)]


def test_nonzero_exit_is_step_failed_with_the_last_lines(runner, double, tmp_path):
    with pytest.raises(StepFailed) as err:
        runner.run(
            RunSpec(
                name="fails",
                image=double,
                argv=py("""
            import sys
            for i in range(50): print(f"out {i}")
            sys.exit(3)"""),
                mounts=[],
                env={},
            ),
            log_path=tmp_path / "fail.log",
        )
    msg = str(err.value)
    assert "exit code 3" in msg and str(tmp_path / "fail.log") in msg
    assert "out 49" in msg and "out 30" in msg and "out 29" not in msg  # the last 20 lines


def test_timeout_stops_and_removes_the_container(runner, double, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(StepTimeout) as err:
        runner.run(
            RunSpec(
                name="slow",
                image=double,
                argv=["trtllm-build", "--model_config", "/nonexistent.json"],
                mounts=[],
                env={"TOOLCHAIN_DOUBLE_SLEEP": "60"},
                timeout_s=3,
            ),
            log_path=tmp_path / "slow.log",
        )
    assert time.monotonic() - t0 < 20
    assert "timeout of 3 s" in str(err.value) and "building..." in str(err.value)
    # the `runner` fixture asserts that no container is left


def test_gpu_request_without_nvidia_runtime_is_a_plain_message(runner, double, tmp_path, docker_client):
    if "nvidia" in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this Docker Engine has the NVIDIA runtime")
    with pytest.raises(RunnerUnavailable) as err:
        runner.run(
            RunSpec(name="gpu", image=double, argv=["nvidia-smi"], mounts=[], env={}, gpus=1),
            log_path=tmp_path / "gpu.log",
        )
    msg = str(err.value)
    assert 'could not select device driver "" with capabilities: [[gpu]]' in msg
    assert "nvidia-container-toolkit" in msg and "nvidia-ctk runtime configure --runtime=docker" in msg
    assert "restart" in msg


def test_unpinned_tag_is_refused_unless_allowed(docker_client, double, tmp_path, make_runner):
    tag = "127.0.0.1:5000/trtbuild-test/toolchain-double:1.1.0"
    with pytest.raises(ToolchainError) as err:
        DockerRunner().run(
            RunSpec(name="x", image=tag, argv=["true"], mounts=[], env={}), log_path=tmp_path / "l"
        )
    assert "not pinned" in str(err.value) and "--allow-unpinned" in str(err.value)
    res = make_runner(allow_unpinned=True).run(
        RunSpec(name="x", image=tag, argv=["true"], mounts=[], env={}), log_path=tmp_path / "l"
    )
    assert res.exit_code == 0


def test_secret_values_never_reach_logs_or_command_lines(runner, double, tmp_path):
    secret = "hf_SeCrEtToKeN_1234567890"
    spec = RunSpec(
        name="secret",
        image=double,
        argv=py("import os; print('token is', os.environ['HF_TOKEN'])"),
        mounts=[],
        env={"HF_TOKEN": secret, "OTHER": "visible"},
        secret_env=("HF_TOKEN",),
    )
    lines: list[str] = []
    runner.run(spec, log_path=tmp_path / "s.log", on_line=lines.append)
    assert lines == ["token is ***"]
    log = (tmp_path / "s.log").read_text()
    assert secret not in log and "HF_TOKEN=***" in log and "OTHER=visible" in log
    assert secret not in runner.describe(spec)


def test_engine_unreachable_is_runner_unavailable(monkeypatch, double, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(RunnerUnavailable) as err:
        DockerRunner().run(
            RunSpec(name="x", image=double, argv=["true"], mounts=[], env={}), log_path=tmp_path / "l"
        )
    assert "not reachable" in str(err.value) and "systemctl start docker" in str(err.value)


def test_missing_image_is_pulled_by_digest(docker_client, double, tmp_path, make_runner):
    import docker.errors

    repo = "127.0.0.1:5000/trtbuild-test/pull-probe"
    docker_client.images.get(double).tag(repo, "v1")
    for _ in docker_client.images.push(repo, tag="v1", stream=True, decode=True):
        pass
    digest = docker_client.images.get_registry_data(f"{repo}:v1").id
    pinned = f"{repo}@{digest}"
    docker_client.images.remove(f"{repo}:v1")
    try:
        docker_client.images.remove(pinned)
    except Exception:  # noqa: BLE001 - the digest ref may have gone with the tag
        pass
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(pinned)
    res = make_runner().run(
        RunSpec(name="pulled", image=pinned, argv=["true"], mounts=[], env={}), log_path=tmp_path / "l"
    )
    assert res.exit_code == 0
    docker_client.images.get(pinned)


def test_unknown_digest_is_a_plain_image_error(double, tmp_path):
    missing = "127.0.0.1:5000/trtbuild-test/toolchain-double@sha256:" + "0" * 64
    with pytest.raises(ImageUnavailable) as err:
        DockerRunner().run(
            RunSpec(name="x", image=missing, argv=["true"], mounts=[], env={}), log_path=tmp_path / "l"
        )
    assert "pulling it failed" in str(err.value) and "docker login" in str(err.value)


INTERRUPT_SCRIPT = """
import json, sys
from pathlib import Path
from trtbuild.errors import Interrupted
from trtbuild.runner import DockerRunner, RunSpec
ulimits = json.loads(sys.argv[4])
spec = RunSpec(name="interrupt", image=sys.argv[1], argv=["trtllm-build", "--model_config", "/x.json"],
               mounts=[], env={"TOOLCHAIN_DOUBLE_SLEEP": "120"})
try:
    DockerRunner(labels={"trtbuild.test": sys.argv[2]}, stop_grace_s=5,
                 ulimits={k: tuple(v) for k, v in ulimits.items()} if ulimits else None).run(
        spec, log_path=Path(sys.argv[3]), on_line=lambda l: print(l, flush=True))
except KeyboardInterrupt:
    print("RAISED KeyboardInterrupt", flush=True); sys.exit(130)
except Interrupted as e:
    print("RAISED Interrupted", flush=True); sys.exit(e.exit_code)
"""


@pytest.mark.parametrize(
    "sig,raised", [(signal.SIGINT, "KeyboardInterrupt"), (signal.SIGTERM, "Interrupted")]
)
def test_interrupt_stops_and_removes_the_container(
    docker_client, double, tmp_path, run_label, sig, raised, engine_ulimits
):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            INTERRUPT_SCRIPT,
            double,
            run_label,
            str(tmp_path / "i.log"),
            json.dumps(engine_ulimits),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "building..." in line:
                break
        assert containers_with_label(docker_client, run_label), "the step must be running"
        t0 = time.monotonic()
        proc.send_signal(sig)
        rest = proc.stdout.read()
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"RAISED {raised}" in rest and code == 130
    assert time.monotonic() - t0 < 15
    assert not containers_with_label(docker_client, run_label), "no container may be left (docker ps -a)"

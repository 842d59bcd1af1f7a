"""LocalRunner: the same RunSpec as a subprocess, container paths translated to the mounts' sources."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.toolchain_double.fixture import DOUBLE_SRC
from trtbuild.errors import RunnerUnavailable, StepFailed, StepTimeout
from trtbuild.runner import LocalRunner, Mount, PathTranslator, RunSpec

REPO = Path(__file__).resolve().parents[2]


def test_translation_takes_the_longest_matching_mount():
    tr = PathTranslator(
        [
            Mount(Path("/host/out"), "/out", False),
            Mount(Path("/host/engine"), "/out/engine", False),
            Mount(Path("/host/model"), "/model"),
        ]
    )
    assert tr.path("/out/engine/rank0.engine") == "/host/engine/rank0.engine"
    assert tr.path("/out/ckpt") == "/host/out/ckpt"
    assert tr.path("/out") == "/host/out"
    assert tr.path("/outside/x") == "/outside/x" and tr.path("/outx") == "/outx"
    assert tr.arg("--output_dir=/out/engine") == "--output_dir=/host/engine"
    assert tr.arg("relative/path") == "relative/path" and tr.arg("--flag") == "--flag"
    assert tr.env_value("/model:/opt/site:/out/x") == "/host/model:/opt/site:/host/out/x"
    assert tr.env_value("hf://org/repo") == "hf://org/repo"


def test_resolved_spec_translates_argv_env_and_workdir(tmp_path):
    spec = RunSpec(
        name="x",
        image="img@sha256:" + "0" * 64,
        argv=["tool", "--dir", "/ctr/a", "--o=/ctr/b"],
        mounts=[Mount(tmp_path, "/ctr", False)],
        env={"DATA": "/ctr/d", "TOKEN": "s3cr3t-value"},
        secret_env=("TOKEN",),
        workdir="/ctr",
    )
    argv, env, workdir = LocalRunner().resolved(spec)
    assert argv == ["tool", "--dir", f"{tmp_path}/a", f"--o={tmp_path}/b"]
    assert (
        env["DATA"] == f"{tmp_path}/d" and env["CUDA_VISIBLE_DEVICES"] == ""
    )  # gpus=0: no GPU, as in Docker
    assert workdir == str(tmp_path)
    assert "s3cr3t-value" not in LocalRunner().describe(spec) and "TOKEN=***" in LocalRunner().describe(spec)


@pytest.fixture
def double_root(tmp_path) -> dict[str, str]:
    """The double's tools runnable on the host: its package on PYTHONPATH, its data under a root dir."""
    root = tmp_path / "double-root"
    root.mkdir()
    shutil.copy(REPO / "trtbuild" / "data" / "cli_specs" / "1.1.json", root / "cli_spec.json")
    (root / "VERSION").write_text("1.1.0\n")
    return {"TOOLCHAIN_DOUBLE_ROOT": str(root), "PYTHONPATH": str(DOUBLE_SRC)}


def test_convert_and_build_through_container_paths(tiny_llama, tmp_path, double_root):
    out = tmp_path / "out"
    out.mkdir()
    mounts = [Mount(tiny_llama, "/model"), Mount(out, "/out", read_only=False)]
    lines: list[str] = []
    r = LocalRunner()
    res = r.run(
        RunSpec(
            name="convert",
            image=None,
            mounts=mounts,
            env=double_root,
            argv=[
                sys.executable,
                "-m",
                "trtllm_double.convert",
                "--model_dir",
                "/model",
                "--output_dir",
                "/out/ckpt",
                "--tp_size",
                "2",
            ],
        ),
        log_path=tmp_path / "convert.log",
        on_line=lines.append,
    )
    assert res.exit_code == 0 and any("rank 1: wrote" in ln for ln in lines)
    r.run(
        RunSpec(
            name="build",
            image=None,
            mounts=mounts,
            env=double_root,
            workdir="/out",
            argv=[
                sys.executable,
                "-m",
                "trtllm_double.build",
                "--checkpoint_dir",
                "/out/ckpt",
                "--output_dir=/out/engine",
            ],
        ),
        log_path=tmp_path / "build.log",
    )
    assert sorted(p.name for p in (out / "engine").iterdir()) == [
        "config.json",
        "rank0.engine",
        "rank1.engine",
    ]
    assert (out / "model.cache").is_file(), "default --output_timing_cache is relative to the workdir"
    assert json.loads((out / "engine" / "config.json").read_text())["version"] == "1.1.0"


def test_nonzero_exit_is_step_failed_with_the_tail(tmp_path):
    code = "import sys\nfor i in range(40): print('row', i)\nsys.exit(4)"
    with pytest.raises(StepFailed) as err:
        LocalRunner().run(
            RunSpec(name="f", image=None, argv=[sys.executable, "-c", code]), log_path=tmp_path / "f.log"
        )
    msg = str(err.value)
    assert "exit code 4" in msg and "row 39" in msg and "row 19" not in msg and str(tmp_path / "f.log") in msg


def test_missing_executable_is_runner_unavailable(tmp_path):
    with pytest.raises(RunnerUnavailable) as err:
        LocalRunner().run(
            RunSpec(name="m", image=None, argv=["trtllm-build-not-here"]), log_path=tmp_path / "m.log"
        )
    assert "not found" in str(err.value) and "inside the toolchain image" in str(err.value)


def test_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    code = (
        f"import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\nprint('started', flush=True)\ntime.sleep(600)"
    )
    t0 = time.monotonic()
    with pytest.raises(StepTimeout) as err:
        LocalRunner(stop_grace_s=2).run(
            RunSpec(name="t", image=None, argv=[sys.executable, "-c", code], timeout_s=2),
            log_path=tmp_path / "t.log",
        )
    assert time.monotonic() - t0 < 10 and "started" in str(err.value)
    child = int(pidfile.read_text())
    time.sleep(0.2)
    assert not alive(child), "the step's child must be stopped with it"


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


INTERRUPT = """
import sys
from pathlib import Path
from trtbuild.errors import Interrupted
from trtbuild.runner import LocalRunner, RunSpec
spec = RunSpec(name="i", image=None, argv=[sys.executable, "-c",
               "import time\\nprint('working', flush=True)\\ntime.sleep(600)"])
try:
    LocalRunner(stop_grace_s=2).run(spec, log_path=Path(sys.argv[1]), on_line=lambda l: print(l, flush=True))
except Interrupted as e:  # SIGTERM (a KeyboardInterrupt too: caught first)
    print("RAISED Interrupted", flush=True); sys.exit(e.exit_code)
except KeyboardInterrupt:
    print("RAISED KeyboardInterrupt", flush=True); sys.exit(130)
"""


@pytest.mark.parametrize(
    "sig,raised", [(signal.SIGINT, "KeyboardInterrupt"), (signal.SIGTERM, "Interrupted")]
)
def test_interrupt_stops_the_step(tmp_path, sig, raised):
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPT, str(tmp_path / "i.log")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "working"
    proc.send_signal(sig)
    rest = proc.stdout.read()
    assert proc.wait(20) == 130 and f"RAISED {raised}" in rest
    out = subprocess.run(
        ["pgrep", "-f", "time.sleep\\(600\\)"], capture_output=True, text=True
    ).stdout.split()
    assert not [p for p in out if int(p) != proc.pid]

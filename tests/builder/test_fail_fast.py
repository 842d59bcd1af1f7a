"""A build on a host that cannot build stops before pulling an image or fetching a model, with doctor's
message (Docker Engine without the NVIDIA runtime; no GPU for --runner local; the wrong arch), and --json
keeps every warning (as JSON lines on stderr)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, REPO

RECIPE = RECIPES / "llama3-8b-bf16.toml"  # hf:// model, NGC toolchain image: neither is reachable here


def build(home: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TRTBUILD_HOME": str(home),
        "HF_ENDPOINT": "http://127.0.0.1:9",  # a fetch, were one to start, would fail (not download)
        "HF_HUB_CACHE": str(home / "hf"),
        "PATH": path or os.environ["PATH"],
    }
    return subprocess.run(
        [sys.executable, "-m", "trtbuild", "build", str(RECIPE), "--allow-unpinned", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def nothing_fetched(home: Path) -> bool:
    return not (home / "work" / "models").exists() and not (home / "hf").exists()


@pytest.mark.docker
def test_docker_engine_without_nvidia_runtime(tmp_path: Path) -> None:
    import docker

    client = docker.from_env()
    if "nvidia" in (client.info().get("Runtimes") or {}):
        pytest.skip("this Docker Engine has the NVIDIA runtime")
    image = "nvcr.io/nvidia/tensorrt-llm/release:1.1.0"
    r = build(tmp_path)
    assert r.returncode == 1, r.stderr
    assert "nvidia-runtime: no NVIDIA runtime in the Docker Engine" in r.stderr
    assert "nvidia-container-toolkit" in r.stderr and "Traceback" not in r.stderr
    assert "running" not in r.stderr  # no step (and no fingerprint probe) started
    assert nothing_fetched(tmp_path) and not client.images.list(name=image.split(":")[0])


def _fake_nvidia_smi(bin_dir: Path, rows: list[str]) -> str:
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    body = "\\n".join(rows)
    smi.write_text(
        f"#!/bin/sh\ncase \"$1\" in --query-gpu*) printf '{body}\\n';; *) echo 'CUDA Version: 12.8';; esac\n"
    )
    smi.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def test_local_runner_without_a_gpu(tmp_path: Path) -> None:
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("this host has nvidia-smi")
    r = build(tmp_path, "--runner", "local")
    assert r.returncode == 1, r.stderr
    assert "gpus: no GPU: nvidia-smi not found" in r.stderr and "Traceback" not in r.stderr
    assert nothing_fetched(tmp_path)


def test_wrong_arch_stops_and_json_keeps_warnings(tmp_path: Path) -> None:
    a100 = _fake_nvidia_smi(tmp_path / "a100", ["NVIDIA A100-SXM4-80GB, 8.0, 570.124.06, 81920"] * 2)
    r = build(tmp_path, "--runner", "local", path=a100)
    assert r.returncode == 1 and "(sm80); the recipe targets sm90" in r.stderr, r.stderr
    assert nothing_fetched(tmp_path)
    mixed = _fake_nvidia_smi(
        tmp_path / "mixed",
        ["NVIDIA H100 80GB HBM3, 9.0, 570.124.06, 81559", "NVIDIA H200, 9.0, 570.124.06, 143771"],
    )
    r = build(tmp_path, "--runner", "local", "--json", path=mixed)  # passes the checks; the fetch fails
    assert r.returncode != 0 and r.stdout == ""
    events = [json.loads(line)["event"] for line in r.stderr.splitlines() if line.startswith('{"event"')]
    assert any(e.startswith("warning: gpus:") and "mixed GPU models" in e for e in events), r.stderr

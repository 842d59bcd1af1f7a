"""`trtbuild doctor` on this host, through the real CLI (subprocess), with the double's nvidia-smi."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runner.test_fingerprint import fake_nvidia_smi
from tests.toolchain_double.fixture import write_toolchains_toml

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.docker


def doctor(
    *args: str, path_prefix: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    e = {**os.environ, **(env or {})}
    if path_prefix is not None:
        e["PATH"] = f"{path_prefix}:{e['PATH']}"
    else:  # no nvidia-smi on PATH
        e["PATH"] = ":".join(p for p in e["PATH"].split(":") if not (Path(p) / "nvidia-smi").exists())
    return subprocess.run(
        [sys.executable, "-m", "trtbuild", "doctor", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=e,
        timeout=120,
    )


def statuses(p: subprocess.CompletedProcess) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(p.stdout)["checks"]}


def test_doctor_json_on_a_host_with_gpus(toolchain_double, tmp_path, docker_client):
    tcs = write_toolchains_toml(tmp_path / "toolchains.toml", toolchain_double, min_driver="525.60.13")
    p = doctor("--json", "--toolchains", str(tcs), path_prefix=fake_nvidia_smi(tmp_path / "bin", gpus=2))
    checks = statuses(p)
    assert checks["docker"]["status"] == "ok" and "Docker Engine" in checks["docker"]["detail"]
    assert checks["gpus"]["status"] == "ok"
    assert checks["gpus"]["detail"].startswith(
        "2 × NVIDIA H100 80GB HBM3 (sm90, 81559 MiB), driver 535.104.05"
    )
    for ver in toolchain_double:
        c = checks[f"toolchain double-{ver}"]
        assert (
            c["status"] == "ok" and "pinned" in c["detail"] and "driver 535.104.05 ≥ 525.60.13" in c["detail"]
        )
    # without a recipe, disk is a warning below 50 GiB free (this machine's free space varies)
    assert checks["disk"]["status"] in ("ok", "warn") and "GiB free" in checks["disk"]["detail"]
    assert checks["ram"]["status"] == "ok"
    has_runtime = "nvidia" in (docker_client.info().get("Runtimes") or {})
    assert checks["nvidia-runtime"]["status"] == ("ok" if has_runtime else "fail")
    if not has_runtime:
        assert "nvidia-ctk runtime configure --runtime=docker" in checks["nvidia-runtime"]["fix"]
    assert p.returncode == (0 if has_runtime and checks["registry"]["status"] != "fail" else 1)
    assert json.loads(p.stdout)["ok"] is (p.returncode == 0)


def test_doctor_fails_a_driver_below_the_toolchain_minimum(toolchain_double, tmp_path):
    tcs = write_toolchains_toml(tmp_path / "toolchains.toml", toolchain_double, min_driver="999.1")
    checks = statuses(
        doctor("--json", "--toolchains", str(tcs), path_prefix=fake_nvidia_smi(tmp_path / "bin"))
    )
    c = checks["toolchain double-1.1.0"]
    assert c["status"] == "fail" and "driver 535.104.05 < required 999.1" in c["detail"]


def test_doctor_unknown_minimum_driver_and_unpinned_are_warnings(toolchain_double, tmp_path):
    tcs = write_toolchains_toml(tmp_path / "toolchains.toml", toolchain_double, pinned=False)
    checks = statuses(
        doctor("--json", "--toolchains", str(tcs), path_prefix=fake_nvidia_smi(tmp_path / "bin"))
    )
    c = checks["toolchain double-1.1.0"]
    assert c["status"] == "warn" and "minimum driver unknown" in c["detail"] and "NOT pinned" in c["detail"]


def test_doctor_text_output_without_gpu(toolchain_double, tmp_path):
    tcs = write_toolchains_toml(tmp_path / "toolchains.toml", toolchain_double)
    p = doctor("--toolchains", str(tcs))
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    gpu_line = next(ln for ln in lines if " gpus " in ln)
    assert gpu_line.startswith("✗") and "nvidia-smi not found" in gpu_line
    names = [
        "docker",
        "nvidia-runtime",
        "gpus",
        "toolchain double-1.1.0",
        "toolchain double-0.21.0",
        "disk",
        "ram",
        "registry",
    ]
    for name in names:
        assert sum(1 for ln in lines if ln[2:].startswith(name + " ")) == 1, name
    assert lines[-1] == "host not ready"


def test_doctor_with_a_recipe_estimates_disk_and_ram(toolchain_double, tiny_llama, tmp_path):
    tcs = write_toolchains_toml(tmp_path / "toolchains.toml", toolchain_double)
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(
        f'name = "tiny"\n[model]\nsource = "file://{tiny_llama}"\ndtype = "bfloat16"\n'
        f"[limits]\nmax_input_len = 128\nmax_seq_len = 256\n"
        f'[target]\ngpu_arch = "sm90"\ntoolchain = "double-1.1.0"\n'
    )
    p = doctor(
        "--json",
        "--toolchains",
        str(tcs),
        "--recipe",
        str(recipe),
        path_prefix=fake_nvidia_smi(tmp_path / "bin"),
    )
    checks = statuses(p)
    assert [n for n in checks if n.startswith("toolchain")] == ["toolchain double-1.1.0"]
    assert (
        "recipe needs ~0.0 GiB" in checks["disk"]["detail"]
        and "safetensors headers" in checks["disk"]["detail"]
    )
    assert checks["disk"]["status"] == "ok" and checks["ram"]["status"] == "ok"


def test_doctor_without_docker(toolchain_double, tmp_path):
    tcs = write_toolchains_toml(tmp_path / "toolchains.toml", toolchain_double)
    checks = statuses(
        doctor("--json", "--toolchains", str(tcs), env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    )
    assert checks["docker"]["status"] == "fail" and "systemctl start docker" in checks["docker"]["fix"]
    assert checks["nvidia-runtime"]["status"] == "skip"

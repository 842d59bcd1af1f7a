"""Fingerprint: nvidia-smi outputs in NVIDIA's documented formats, the double, and the version probe."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from registry.api import arch_of_compute_cap, detect_host, host_gpus
from registry.errors import InvalidInput
from registry.nvidia_smi import parse_cuda_version, parse_gpu_query
from tests.toolchain_double.fixture import DOUBLE_SRC, host_python_mounts
from trtbuild.host.fingerprint import container_gpus, toolchain_versions

# `nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader,nounits`
EIGHT_H100 = "\n".join("NVIDIA H100 80GB HBM3, 9.0, 550.54.15, 81559" for _ in range(8)) + "\n"
# the same query without noheader/nounits
WITH_HEADER_AND_UNITS = (
    "name, compute_cap, driver_version, memory.total [MiB]\nNVIDIA H200, 9.0, 560.35.03, 143771 MiB\n"
)
NA_FIELDS = "NVIDIA H100 80GB HBM3, 9.0, 535.104.05, [N/A]\nNVIDIA A100-SXM4-80GB, [N/A], 535.104.05, 81920\n"
# a container banner before the rows (the NGC images print one), and a name with a comma
BANNER = (
    "=============\n== CUDA ==\n=============\nCUDA Version 12.2, see https://docs.nvidia.com\n"
    "NVIDIA RTX 6000 Ada Generation, Workstation, 8.9, 535.104.05, 49140\n"
)
HEADER_535 = """Wed Sep  6 08:52:26 2023
+---------------------------------------------------------------------------------------+
| NVIDIA-SMI 535.104.05             Driver Version: 535.104.05   CUDA Version: 12.2     |
|-----------------------------------------+----------------------+----------------------+
"""
HEADER_OLD = "| NVIDIA-SMI 470.57.02    Driver Version: 470.57.02    CUDA Version: 11.4     |\n"


def test_parse_eight_gpus():
    gpus = parse_gpu_query(EIGHT_H100)
    assert len(gpus) == 8 and [g.index for g in gpus] == list(range(8))
    g = gpus[0]
    assert (g.name, g.compute_cap, g.arch, g.driver_version, g.memory_mib) == (
        "NVIDIA H100 80GB HBM3",
        "9.0",
        "sm90",
        "550.54.15",
        81559,
    )


def test_parse_header_units_na_banner_and_commas():
    (h200,) = parse_gpu_query(WITH_HEADER_AND_UNITS)
    assert (h200.name, h200.memory_mib, h200.arch) == ("NVIDIA H200", 143771, "sm90")
    a, b = parse_gpu_query(NA_FIELDS)
    assert a.memory_mib is None and a.arch == "sm90"
    assert b.compute_cap is None and b.arch is None and b.memory_mib == 81920
    (ada,) = parse_gpu_query(BANNER)
    assert ada.name == "NVIDIA RTX 6000 Ada Generation, Workstation" and ada.arch == "sm89"
    assert parse_gpu_query("No devices were found\n") == []


def test_arch_and_header_versions():
    assert [arch_of_compute_cap(c) for c in ("9.0", "8.9", "8.0", "10.0", "12.0", None, "N/A")] == [
        "sm90",
        "sm89",
        "sm80",
        "sm100",
        "sm120",
        None,
        None,
    ]
    assert parse_cuda_version(HEADER_535) == "12.2"
    assert parse_cuda_version(HEADER_OLD) == "11.4"
    assert parse_cuda_version("no header") is None


def test_no_nvidia_smi_is_a_fact_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    fp = host_gpus()
    assert fp.gpu_count == 0 and fp.gpu_arch is None and "nvidia-smi not found" in fp.error
    assert fp.to_dict()["gpu_count"] == 0


def fake_nvidia_smi(bin_dir: Path, gpus: int = 2, driver: str = "535.104.05") -> Path:
    """The double's nvidia-smi on the host PATH (it is stdlib Python)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "nvidia-smi"
    script.write_text(
        f"#!/bin/sh\nTOOLCHAIN_DOUBLE_GPUS={gpus} TOOLCHAIN_DOUBLE_DRIVER={driver} "
        f'PYTHONPATH={DOUBLE_SRC} exec {sys.executable} -m trtllm_double.nvidia_smi "$@"\n'
    )
    script.chmod(0o755)
    return bin_dir


def test_host_fingerprint_from_the_doubles_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{fake_nvidia_smi(tmp_path / 'bin')}:{os.environ['PATH']}")
    d = host_gpus().to_dict()
    assert (
        d["gpu_count"],
        d["gpu_name"],
        d["gpu_arch"],
        d["compute_capability"],
        d["driver_version"],
        d["cuda_driver_version"],
        d["memory_mib"],
        d["homogeneous"],
        d["error"],
    ) == (2, "NVIDIA H100 80GB HBM3", "sm90", "9.0", "535.104.05", "12.2", 81559, True, None)


def test_resolve_reads_the_host_through_the_same_nvidia_smi_parser(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{fake_nvidia_smi(tmp_path / 'bin', gpus=4)}:{os.environ['PATH']}")
    host = detect_host(trtllm="1.1.0")
    assert (host.gpu_arch, host.driver_version, host.gpu_count, host.trtllm_version) == (
        "sm90",
        "535.104.05",
        4,
        "1.1.0",
    )
    assert host.gpu_mem_gib == pytest.approx(81559 / 1024)
    explicit = detect_host(gpu_arch="9.0", driver="570.1", gpus=1, gpu_mem_gib=40.0, trtllm="1.0.0")
    assert (explicit.gpu_arch, explicit.driver_version, explicit.gpu_count) == ("sm90", "570.1", 1)


def test_resolve_without_nvidia_smi_names_the_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InvalidInput) as err:
        detect_host()
    assert "nvidia-smi not found" in str(err.value) and "--gpu-arch" in str(err.value)


@pytest.mark.docker
def test_container_fingerprint_of_the_double(runner, double):
    fp = container_gpus(runner, double, gpus=0)  # the double's nvidia-smi needs no device
    assert (fp.gpu_count, fp.gpu_name, fp.gpu_arch, fp.driver_version, fp.cuda_driver_version) == (
        1,
        "NVIDIA H100 80GB HBM3",
        "sm90",
        "535.104.05",
        "12.2",
    )
    assert fp.source == f"container:{double}"


@pytest.mark.docker
def test_container_fingerprint_without_nvidia_runtime_says_so(runner, double, docker_client):
    if "nvidia" in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this Docker Engine has the NVIDIA runtime")
    fp = container_gpus(runner, double)  # all GPUs requested
    assert fp.gpu_count == 0 and "no NVIDIA runtime" in fp.error


@pytest.mark.docker
def test_toolchain_versions_of_the_double(runner, double):
    v = toolchain_versions(runner, double)
    assert (v.trtllm_version, v.tensorrt_version, v.modelopt_version, v.torch_version) == (
        "1.1.0",
        "0.0.0+double",
        None,
        None,
    )
    assert v.python_version.startswith("3.11.")


@pytest.mark.docker
@pytest.mark.quantize
def test_toolchain_versions_with_host_modelopt_mounted(runner, double):
    modelopt = pytest.importorskip("modelopt")
    torch = pytest.importorskip("torch")
    mounts, env = host_python_mounts()
    v = toolchain_versions(runner, double, mounts=mounts, env=env)
    assert v.modelopt_version == modelopt.__version__ and v.torch_version == torch.__version__
    assert v.trtllm_version == "1.1.0"


@pytest.mark.docker
def test_collect_fingerprint_for_the_builder(runner, double):
    from trtbuild.host.fingerprint import collect_fingerprint

    fp = collect_fingerprint(runner, double, gpus=0)
    assert (
        fp.gpu_arch,
        fp.gpu_name,
        fp.gpu_count,
        fp.driver_version,
        fp.cuda_version,
        fp.trtllm_version,
        fp.tensorrt_version,
    ) == ("sm90", "NVIDIA H100 80GB HBM3", 1, "535.104.05", "12.2", "1.1.0", "0.0.0+double")
    d = fp.to_dict()
    assert (
        d["gpu_arch"] == "sm90"
        and d["toolchain"]["image"] == double
        and d["gpu"]["gpus"][0]["memory_mib"] == 81559
    )

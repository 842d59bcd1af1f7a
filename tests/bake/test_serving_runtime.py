"""``resolve`` / ``pull --resolve`` read the serving runtime's TensorRT-LLM version from a serving image
(``--serving-image``): its trtbuild label first, else a probe container, on the real Docker Engine."""

from __future__ import annotations

import json

import pytest

from registry.api import Registry
from tests.bake.conftest import metadata_for, write_engine
from tests.bake.test_cli import trtbuild

HOST = ["--gpu-arch", "sm90", "--driver", "570.124.06", "--gpus", "1", "--gpu-mem-gib", "79.6"]


@pytest.mark.docker
def test_serving_image_gives_the_runtime_version(docker_client, base_image_factory, tmp_path):
    db, store = f"sqlite:///{tmp_path / 'reg.db'}", f"file://{tmp_path / 'store'}"
    reg = Registry.open(db, store)
    hashes = {
        v: reg.push(write_engine(tmp_path / v, version=v), name="llama", metadata=metadata_for(v)).hash
        for v in ("1.0.0", "1.1.0")
    }
    env = {"TRTBUILD_DB_URL": db, "TRTBUILD_STORE_URL": store}
    probed = base_image_factory("1.0.0")  # no label: the probe container reads tensorrt_llm's metadata
    out = trtbuild("resolve", "llama", *HOST, "--serving-image", probed, "--json", env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["best"]["hash"] == hashes["1.0.0"] and result["host"]["trtllm_version"] == "1.0.0"
    labelled = base_image_factory("1.1.0", {"ai.trtbuild.trtllm_version": "1.1.0"})
    dest = tmp_path / "dest"
    out = trtbuild("pull", "--resolve", "llama", str(dest), *HOST, "--serving-image", labelled, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads((dest / ".trtbuild-artifact.json").read_text())["hash"] == hashes["1.1.0"]
    out = trtbuild("resolve", "llama", *HOST, "--serving-image", labelled, "--trtllm", "1.0.0", env=env)
    assert out.returncode == 2 and "--trtllm 1.0.0 but the serving image" in out.stderr
    out = trtbuild("resolve", "llama", *HOST, "--serving-image", "trtbuild-test/absent:0", env=env)
    assert out.returncode == 2 and "not present in the Docker Engine" in out.stderr
    assert "Traceback" not in out.stderr

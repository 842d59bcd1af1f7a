"""The main job end to end, through the real Docker Engine and the toolchain double.

build -> published -> second build is a cache hit with no container started -> change only
max_batch_size -> only the build step runs -> pull by hash and verify; Ctrl-C mid-build leaves no
partial artifact and no stale lease; two concurrent builds of one recipe build once.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.toolchain_double.fixture import write_toolchains_toml

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _created_containers(client, since: float) -> list[str]:
    events = client.events(
        since=int(since),
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "event": "create"},
    )
    return [e["Actor"]["Attributes"].get("name", "") for e in events]


def test_build_cache_hit_shapes_only_and_pull(project, docker_client, tmp_path):  # noqa: F811
    recipe = project.recipe()
    first = project.build(recipe)
    assert first["cache_hit"] is False
    assert first["steps_run"] == ["convert", "build", "verify", "publish"]

    time.sleep(1.1)  # docker events have one-second resolution: everything of the first build is older
    since = int(time.time())
    second = project.build(recipe)
    assert second["cache_hit"] is True and second["hash"] == first["hash"] and second["steps_run"] == []
    assert _created_containers(docker_client, since) == [], "a cache hit must start no container"

    project.recipe(max_batch_size=8)
    third = project.build(recipe)
    assert third["checkpoint_key"] == first["checkpoint_key"] and third["engine_key"] != first["engine_key"]
    assert third["steps_run"] == ["build", "verify", "publish"]

    dest = tmp_path / "pulled"
    pulled = project.cli("pull", third["hash"], str(dest))
    assert pulled.returncode == 0, pulled.stderr
    config = json.loads((dest / "config.json").read_text())
    assert config["build_config"]["max_batch_size"] == 8
    assert config["pretrained_config"]["mapping"]["tp_size"] == 2
    assert {p.name for p in dest.glob("rank*.engine")} == {"rank0.engine", "rank1.engine"}
    verify = json.loads((dest / "trtbuild" / "verify.json").read_text())
    assert verify["ok"] is True
    shown = json.loads(project.cli("show", third["hash"], "--json").stdout)
    assert shown["provenance"]["build_seconds"] > 0 and shown["metadata"]["build_key"] == third["engine_key"]


def test_ctrl_c_mid_build_leaves_nothing(project, docker_client):  # noqa: F811
    recipe = project.recipe("slow.toml", max_batch_size=2)
    proc = project.popen_build(recipe, "--env", "TOOLCHAIN_DOUBLE_SLEEP=60")
    deadline = time.time() + 120
    while time.time() < deadline:
        if docker_client.containers.list(filters={"name": "trtbuild-build-"}):
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the build container never started")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert docker_client.containers.list(all=True, filters={"name": "trtbuild-build-"}) == []
    plan = json.loads(project.cli("plan", str(recipe), "--json").stdout)
    listing = json.loads(project.cli("ls", "--json").stdout)
    assert all(a.get("build_key") != plan["engine_key"] for a in listing), "no engine may be published"
    reg = project.backend.open()
    assert reg.acquire_lease(plan["engine_key"], "probe", 5.0), "the lease must have been released"
    reg.release_lease(plan["engine_key"], "probe")
    engines = Path(project.backend.env["TRTBUILD_HOME"]) / "work" / "engines"
    assert not any(engines.glob("*")) if engines.exists() else True, "no half-made engine dir"


def test_two_concurrent_builds_build_once(project, docker_client):  # noqa: F811
    # a batch size of its own per backend: the engine key (and container names) differ between runs
    recipe = project.recipe(
        "concurrent.toml", max_batch_size=3 if project.backend.kind == "local-sqlite" else 7
    )
    since = time.time() - 1
    procs = [project.popen_build(recipe, "--json", env={"TOOLCHAIN_DOUBLE_SLEEP": "3"}) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert results[0]["hash"] == results[1]["hash"]
    assert sorted(r["cache_hit"] for r in results) == [False, True]
    key = results[0]["engine_key"].split(":")[1][:12]
    builds = [n for n in _created_containers(docker_client, since) if f"trtbuild-build-{key}" in n]
    assert len(builds) == 1, builds


def test_host_arch_mismatch_is_refused(project):
    recipe = project.recipe("ada.toml", arch="sm89")
    result = project.cli("build", str(recipe), *project.build_flags)
    assert result.returncode == 1
    assert "the recipe targets sm89" in result.stderr and "Traceback" not in result.stderr


def test_floating_image_is_refused_without_allow_unpinned(project, toolchain_double):  # noqa: F811
    write_toolchains_toml(project.toolchains, toolchain_double, pinned=False)
    recipe = project.recipe("floating.toml")
    result = project.cli("build", str(recipe), *project.build_flags)
    assert result.returncode == 2
    assert "refusing to build floating references" in result.stderr and "trtbuild lock" in result.stderr


def test_lock_resolves_a_real_registry_tag_then_builds_locked(project, toolchain_double):  # noqa: F811
    """`trtbuild lock` asks the Docker Engine for the registry digest of the double's tag (a real
    distribution registry on 127.0.0.1), and `build --locked` then runs pinned."""
    write_toolchains_toml(project.toolchains, toolchain_double, pinned=False)
    recipe = project.recipe("locked.toml", max_batch_size=9)
    assert project.cli("build", str(recipe), "--locked", *project.build_flags).returncode == 2
    locked = project.cli("lock", str(recipe), "--json")
    assert locked.returncode == 0, locked.stderr
    lock = json.loads(locked.stdout)[0]
    assert lock["image_digest"] == toolchain_double["1.1.0"].split("@", 1)[1]
    assert recipe.with_suffix(".lock").is_file()
    built = project.build(recipe, "--locked")
    assert built["steps_run"][-1] == "publish"

"""Time `trtbuild bake` against the peer a user would otherwise write: copy the engine into a context and
`docker build` a two-line Dockerfile (FROM base + COPY engine). Prints a table; asserts nothing.

usage: python bench/bake_build.py [ENGINE_MIB ...]   (default 256 1024; needs the Docker Engine and the
       trtbuild-test/debian-python:bookworm image; images are tagged trtbuild-test/bench-bake:* and removed)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.bake.conftest import FIXTURES, metadata_for, write_engine  # noqa: E402
from trtbuild.bake import BakeRequest, bake  # noqa: E402
from trtbuild.bake.build import docker_client  # noqa: E402

BASE = "trtbuild-test/bench-bake:base"


def main(sizes: list[int]) -> None:
    client = docker_client()
    client.images.build(path=str(FIXTURES / "base"), tag=BASE, buildargs={"TRTLLM_VERSION": "1.0.0"}, rm=True)
    rows = []
    try:
        for mib in sizes:
            with tempfile.TemporaryDirectory(prefix="bench-bake-") as tmp:
                engine = write_engine(Path(tmp) / "engine", rank_bytes=mib << 20)
                t0 = time.perf_counter()
                bake(
                    BakeRequest(
                        engine_dir=engine,
                        metadata=metadata_for(),
                        template="trtllm-serve",
                        tag=f"trtbuild-test/bench-bake:bake-{mib}",
                        base_image=BASE,
                    ),
                    client=client,
                )
                t_bake = time.perf_counter() - t0

                t0 = time.perf_counter()
                ctx = Path(tmp) / "peer"
                shutil.copytree(engine, ctx / "engine")
                (ctx / "Dockerfile").write_text(f"FROM {BASE}\nCOPY engine/ /opt/engine/\n")
                subprocess.run(
                    ["docker", "build", "-q", "-t", f"trtbuild-test/bench-bake:peer-{mib}", str(ctx)],
                    check=True,
                    capture_output=True,
                )
                t_peer = time.perf_counter() - t0
                rows.append((mib, t_bake, t_peer))
    finally:
        for image in client.images.list(name="trtbuild-test/bench-bake"):
            if BASE not in image.tags:
                client.images.remove(image.id, force=True)
        client.images.remove(BASE)
    print(f"{'engine MiB':>10} | {'trtbuild bake s':>15} | {'cp + docker build s':>19} | {'ratio':>5}")
    print("-" * 60)
    for mib, a, b in rows:
        print(f"{mib:>10} | {a:>15.1f} | {b:>19.1f} | {a / b:>5.2f}")


if __name__ == "__main__":
    main([int(x) for x in sys.argv[1:]] or [256, 1024])

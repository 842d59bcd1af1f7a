"""Where trtbuild keeps its working files: under the registry's cache home (``$TRTBUILD_HOME``, else
``$XDG_CACHE_HOME/trtbuild``, else ``~/.cache/trtbuild``)."""

from __future__ import annotations

import os
from pathlib import Path

from registry.config import cache_dir as cache_home

__all__ = ["cache_home", "farm_job", "farm_state_path", "gpu_devices", "work_root"]


def work_root() -> Path:
    """Step outputs: models, checkpoints, engines and logs, one folder per content key."""
    return cache_home() / "work"


def farm_state_path() -> Path:
    """``trtbuild farm``'s job table: ``$TRTBUILD_FARM_STATE``, else ``<cache>/farm/state.json``."""
    explicit = os.environ.get("TRTBUILD_FARM_STATE")
    return Path(explicit).expanduser() if explicit else cache_home() / "farm" / "state.json"


def farm_job() -> str | None:
    """The scheduler job a build runs in (``$TRTBUILD_FARM_JOB``, set by farm job scripts and manifests)."""
    return os.environ.get("TRTBUILD_FARM_JOB") or None


def gpu_devices() -> list[str]:
    """GPUs a scheduler allocated to this build (``$TRTBUILD_GPU_DEVICES``, comma-separated ids): Docker
    containers get exactly these devices. Empty: no allocation, containers ask for a GPU count."""
    return [d.strip() for d in os.environ.get("TRTBUILD_GPU_DEVICES", "").split(",") if d.strip()]

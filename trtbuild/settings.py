"""Where trtbuild keeps its working files: under the registry's cache home (``$TRTBUILD_HOME``, else
``$XDG_CACHE_HOME/trtbuild``, else ``~/.cache/trtbuild``)."""

from __future__ import annotations

from pathlib import Path

from registry.config import cache_dir as cache_home

__all__ = ["cache_home", "work_root"]


def work_root() -> Path:
    """Step outputs: models, checkpoints, engines and logs, one folder per content key."""
    return cache_home() / "work"

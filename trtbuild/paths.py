"""Where trtbuild keeps its working files: ``$TRTBUILD_HOME``, else ``$XDG_CACHE_HOME/trtbuild``, else
``~/.cache/trtbuild``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    env = os.environ.get("TRTBUILD_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "trtbuild"


def work_root() -> Path:
    """Step outputs, one folder per engine key."""
    return cache_home() / "work"

"""Where the registry lives: database URL and store URL from flags, environment or defaults.

``TRTBUILD_DB_URL`` (default ``sqlite:///<cache>/registry.db``) and ``TRTBUILD_STORE_URL`` (default
``file://<cache>/store``), where ``<cache>`` is ``$TRTBUILD_HOME``, else ``$XDG_CACHE_HOME/trtbuild``, else
``~/.cache/trtbuild``. Store URLs: ``file:///abs/dir``, a plain absolute path, or ``s3://bucket/prefix``
(standard AWS credential chain; endpoint from ``AWS_ENDPOINT_URL`` or ``?endpoint=http://host:port`` in the
URL). ``TRTBUILD_DB_TIMEOUT`` bounds each PostgreSQL catalog call (seconds, default 30).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The registry's home: ``$TRTBUILD_HOME`` or ``$XDG_CACHE_HOME/trtbuild`` or ``~/.cache/trtbuild``."""
    if os.environ.get("TRTBUILD_HOME"):
        return Path(os.environ["TRTBUILD_HOME"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "trtbuild"
    return Path.home() / ".cache" / "trtbuild"


def db_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get("TRTBUILD_DB_URL") or f"sqlite:///{cache_dir() / 'registry.db'}"


def store_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get("TRTBUILD_STORE_URL") or f"file://{cache_dir() / 'store'}"


DB_TIMEOUT_S = 30.0


def db_timeout_s() -> float:
    """``TRTBUILD_DB_TIMEOUT``: seconds a PostgreSQL catalog call may take (default 30; invalid or <= 0:
    the default). A frozen server fails the call after this long, plus at most min(10, it) s to reconnect."""
    try:
        value = float(os.environ.get("TRTBUILD_DB_TIMEOUT", DB_TIMEOUT_S))
    except ValueError:
        return DB_TIMEOUT_S
    return value if value > 0 else DB_TIMEOUT_S

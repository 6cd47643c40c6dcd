"""Where things live: data directory and database URL.

Precedence everywhere: explicit argument (``--data-dir`` / ``--db``) > environment
(``RBFT_DATA_DIR`` / ``RBFT_DATABASE_URL``) > default (``./data`` and a SQLite file inside it).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "database_url", "cache_dir"]


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Return the data directory (created when missing)."""
    raw = explicit or os.environ.get("RBFT_DATA_DIR") or "data"
    path = Path(raw).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(explicit: str | None = None, data_root: str | os.PathLike | None = None) -> str:
    """Return the database URL; a bare file path is taken as a SQLite file."""
    url = explicit or os.environ.get("RBFT_DATABASE_URL")
    if not url:
        return f"sqlite:///{data_dir(data_root) / 'rbft.db'}"
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def cache_dir(data_root: str | os.PathLike | None = None) -> Path:
    """Return the cache directory (frame cache, previews) inside the data directory."""
    path = data_dir(data_root) / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path

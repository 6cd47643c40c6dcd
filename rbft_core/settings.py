"""Where things live: data directory, database URL, and the folders the app may import from.

Precedence everywhere: explicit argument (``--data-dir`` / ``--db`` / ``--import-root``) > environment
(``RBFT_DATA_DIR`` / ``RBFT_DATABASE_URL`` / ``RBFT_IMPORT_ROOTS``) > default (``./data``, a SQLite file inside
it, and for imports: the data directory and the user's home).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

from rbft_core.errors import ConfigError

__all__ = ["data_dir", "database_url", "cache_dir", "import_roots", "check_import_source", "IMPORT_ROOTS_ENV"]

IMPORT_ROOTS_ENV = "RBFT_IMPORT_ROOTS"


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


def import_roots(explicit: Optional[Iterable[str | os.PathLike]] = None) -> list[Path]:
    """Folders the web app may import videos from (``--import-root`` / ``RBFT_IMPORT_ROOTS``, ``os.pathsep``
    separated); default: the data directory and the user's home. Each is resolved (symlinks followed)."""
    raw = [str(p) for p in explicit or [] if str(p).strip()]
    if not raw:
        raw = [p for p in os.environ.get(IMPORT_ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    roots = [Path(p).expanduser() for p in raw] if raw else [data_dir(), Path.home()]
    return [Path(os.path.realpath(root)) for root in roots]


def check_import_source(folder: str | os.PathLike, roots: Optional[Iterable[str | os.PathLike]] = None) -> Path:
    """``folder`` resolved, when it lies under an import root; else a ConfigError naming the setting.

    An import makes the videos it records showable in the browser, so the web app only imports from folders
    an administrator allowed, never from ``/`` or another user's files.
    """
    resolved = Path(os.path.realpath(Path(folder).expanduser()))
    allowed = import_roots(roots)
    if any(resolved == root or root in resolved.parents for root in allowed):
        return resolved
    raise ConfigError(f"source folder {resolved} is outside the import roots ({', '.join(map(str, allowed))}); "
                      f"move the videos under one of them, or start the app with --import-root {resolved} "
                      f"(or add it to {IMPORT_ROOTS_ENV})")

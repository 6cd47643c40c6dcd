"""Names users give (datasets, reviewers) and the file names made from them.

``check_dataset_name`` is the one rule for a dataset name wherever one is made (the Datasets tab, ``rbft import``,
an import job, ``db.queries.get_or_create_dataset``). ``file_slug`` turns any name into a file-name part that is
safe (letters, digits, ``_`` and ``-`` only: no separators, dots, spaces) and unique per name (a short hash of the
exact name is appended), so ``front.door`` and ``front_door``, or ``home`` and ``home-2``, never share a file
and a glob for one never matches the other.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from rbft_core.errors import ConfigError

__all__ = ["MAX_DATASET_NAME_CHARS", "check_dataset_name", "file_slug"]

MAX_DATASET_NAME_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def check_dataset_name(name: str) -> str:
    """``name`` stripped, or a ConfigError naming what is wrong: empty, too long, a path separator, ``..``,
    a control or format character."""
    text = (name or "").strip()
    if not text:
        raise ConfigError("dataset name is empty; pass a name such as 'front-door'")
    if len(text) > MAX_DATASET_NAME_CHARS:
        raise ConfigError(f"dataset name is {len(text)} characters; use at most {MAX_DATASET_NAME_CHARS}")
    if "/" in text or "\\" in text:
        raise ConfigError(f"dataset name {text!r} must not contain '/' or '\\'; use e.g. 'front-door'")
    if ".." in text or text.startswith("."):
        raise ConfigError(f"dataset name {text!r} must not start with '.' or contain '..'; use e.g. 'front-door'")
    bad = [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]
    if bad:
        raise ConfigError(f"dataset name {text!r} contains a control character ({ord(bad[0]):#06x}); use letters, "
                          "digits, spaces, '.', '_' or '-'")
    return text


def file_slug(name: str, max_chars: int = 40) -> str:
    """A safe, collision-free file-name part for ``name``: ``front.door`` -> ``front_door-1c4e0f2a``."""
    readable = _UNSAFE.sub("_", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()).strip("_-")
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{readable[:max_chars] or 'x'}-{digest}"

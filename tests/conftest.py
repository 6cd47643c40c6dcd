"""Shared fixtures: a fresh SQLite database per test, the shared real material, offline settings."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

try:  # two shared cores: multi-threaded kernels stall each other
    import torch

    torch.set_num_threads(1)
except ImportError:
    pass

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite file migrated to head (engines are cached per URL, so the path is unique per test)."""
    from db.engine import init_db

    url = f"sqlite:///{tmp_path / 'rbft.db'}"
    init_db(url)
    return url


@pytest.fixture
def session(db_url: str):
    """A session on the fresh database; tests commit when they need to."""
    from db.engine import session_factory

    with session_factory(db_url)() as s:
        yield s


@pytest.fixture
def shared_dir() -> Path:
    """The read-only ``shared/`` folder next to the repository (real annotation files and clips)."""
    for candidate in (REPO_ROOT / "shared", REPO_ROOT.parent / "shared"):
        if (candidate / "real").is_dir():
            return candidate
    pytest.skip("shared/real is not present next to the repository")

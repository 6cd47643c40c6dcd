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
def db_url(tmp_path: Path):
    """A fresh SQLite file migrated to head; its pooled connections are closed after the test."""
    from db.engine import dispose_engines, init_db

    url = f"sqlite:///{tmp_path / 'rbft.db'}"
    init_db(url)
    yield url
    dispose_engines()


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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen2.5-VL folder built offline once per test session."""
    from rbft_core.tiny import TinySpec, build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen2_5_vl", TinySpec(family="qwen2_5_vl"))


@pytest.fixture(scope="session")
def demo_base_model(tmp_path_factory):
    """The fast demo (``DemoConfig.fast()``): world + pre-trained tiny base model, built once per session.

    Returns the ``DemoBuild``; its cache lives in ``<data dir>/demo`` of a session data directory
    (``build.model_dir.parents[1]``), so ``rbft --data-dir`` there reuses it.
    """
    from rbft_core.demo import DemoConfig, build_demo

    root = tmp_path_factory.mktemp("demo-data") / "demo"
    return build_demo(DemoConfig.fast(), root=root)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch) -> Path:
    """A fresh data directory (frame cache, previews, runs) for this test."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("RBFT_DATA_DIR", str(path))
    return path


@pytest.fixture
def world_dataset(tmp_path, db_url, data_dir):
    """A small demo-world dataset (12 clips, both labels in train) whose suggestions are the scene graphs.

    Returns (dataset name, db url). The suggestions are well-formed rationales, recorded as if the tiny
    model wrote them, so training has real, learnable targets.
    """
    from db import queries
    from db.engine import session_scope
    from db.models import Video
    from rbft_core.demo import WorldSpec, render_world
    from rbft_core.importer import import_videos
    from sqlalchemy import select

    manifest = render_world(tmp_path / "world", WorldSpec(num_clips=12, num_frames=8, size=(112, 84), test_fraction=0.3))
    import_videos(db_url, "world", manifest.parent, manifest=manifest, fmt="jsonl", preset="smart-home")
    with session_scope(db_url) as s:
        for video in s.scalars(select(Video)):
            graph = video.meta["scene_graph"]
            queries.add_suggestion(s, video.id, model_id="scene-graph", prompt_version="rationale-v1",
                                   raw_text=str(graph), parse_status="ok", label_hint=True, mean_logprob=-1.0, **graph)
    return "world", db_url

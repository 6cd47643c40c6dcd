"""Shared fixtures: a fresh database per test (SQLite; also PostgreSQL for tests marked ``both_backends``), the shared real material, offline settings."""

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


BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "both_backends: run the test once on SQLite and once on PostgreSQL (RBFT_TEST_PG_URL)")


def pytest_runtest_logreport(report) -> None:
    """Every test's outcome in this session (tests/outcomes.py), for the catalogue test that checks them. Under
    pytest-xdist the controller gets every worker's reports here too."""
    from tests import outcomes

    outcomes.record(report.nodeid, report.when, report.outcome)


def pytest_sessionstart(session) -> None:
    """``RBFT_TEST_OUTCOMES_IN``: outcomes saved by the parallel part of this make test run (tests/outcomes.py)."""
    from tests import outcomes

    if os.environ.get("RBFT_TEST_OUTCOMES_IN"):
        outcomes.load(Path(os.environ["RBFT_TEST_OUTCOMES_IN"]))


def pytest_sessionfinish(session) -> None:
    """``RBFT_TEST_OUTCOMES_OUT``: every outcome, saved by the controller (a worker sees only its own tests)."""
    from tests import outcomes

    if os.environ.get("RBFT_TEST_OUTCOMES_OUT") and not os.environ.get("PYTEST_XDIST_WORKER"):
        outcomes.save(Path(os.environ["RBFT_TEST_OUTCOMES_OUT"]))


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: only what really runs
def pytest_collection_modifyitems(config, items) -> None:
    """Tests about other tests' outcomes run last (tests/outcomes.py ``LAST``)."""
    from tests import outcomes

    outcomes.COLLECTED.update(item.nodeid for item in items)
    last = [item for item in items if item.nodeid in outcomes.LAST]
    items[:] = [item for item in items if item.nodeid not in outcomes.LAST] + last


def pytest_generate_tests(metafunc) -> None:
    """Tests marked ``both_backends`` that use a database run on each backend: ``test_x[sqlite]``, ``[postgresql]``."""
    if "db_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("db_backend", BACKENDS, indirect=True)


@pytest.fixture
def db_backend(request) -> str:
    """The backend a test's database lives on: SQLite unless the test is marked ``both_backends``."""
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def pg_admin():
    """An autocommit engine on the test PostgreSQL server (``RBFT_TEST_PG_URL``, set by ``make test``).

    Without a server the PostgreSQL variants skip; under ``make test`` (``RBFT_TEST_PG_REQUIRED=1``) they fail.
    """
    from tests.pgdb import connect_admin

    engine, problem = connect_admin()
    if engine is None:
        if os.environ.get("RBFT_TEST_PG_REQUIRED") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_template(pg_admin) -> str:
    """A database migrated to head once per session; each test copies it (CREATE DATABASE ... TEMPLATE)."""
    from tests.pgdb import create_database, drop_database

    name = create_database(pg_admin, migrate=True)
    yield name
    drop_database(pg_admin, name)


@pytest.fixture
def empty_db_url(request, tmp_path: Path, db_backend: str):
    """A fresh, empty database (no schema) on the test's backend; dropped afterwards."""
    from db.engine import dispose_engines

    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'dir' / 'm.db'}"
        dispose_engines()
        return
    from tests.pgdb import create_database, database_url_for, drop_database

    admin = request.getfixturevalue("pg_admin")
    name = create_database(admin)
    try:
        yield database_url_for(admin, name)
    finally:
        dispose_engines()
        drop_database(admin, name)


@pytest.fixture
def db_url(request, tmp_path: Path, db_backend: str):
    """A fresh database migrated to head (a SQLite file, or a PostgreSQL database copied from the template)."""
    from db.engine import dispose_engines, init_db

    if db_backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'rbft.db'}"
        init_db(url)
        yield url
        dispose_engines()
        return
    from tests.pgdb import create_database, database_url_for, drop_database

    admin = request.getfixturevalue("pg_admin")
    name = create_database(admin, template=request.getfixturevalue("pg_template"))
    url = database_url_for(admin, name)
    try:
        init_db(url)
        yield url
    finally:
        dispose_engines()
        drop_database(admin, name)


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
    from rbft_core.models.tiny import TinySpec, build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen2_5_vl", TinySpec(family="qwen2_5_vl"))


@pytest.fixture(scope="session")
def demo_base_model(tmp_path_factory):
    """The fast demo (``DemoConfig.fast()``): world + pre-trained tiny base model, built once per session.

    Returns the ``DemoBuild``; its cache lives in ``<data dir>/demo`` of a session data directory
    (``build.model_dir.parents[1]``), so ``rbft --data-dir`` there reuses it.
    """
    from rbft_core.demo import DemoConfig, build_demo

    root = tmp_path_factory.mktemp("demo-data") / "demo"
    if os.environ.get("PYTEST_XDIST_WORKER"):  # parallel workers: the first builds it once, each gets a copy
        import fcntl
        import shutil

        shared = tmp_path_factory.getbasetemp().parent / "demo-shared"
        shared.mkdir(exist_ok=True)
        with open(shared / "build.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            build_demo(DemoConfig.fast(), root=shared / "demo")
        shutil.copytree(shared / "demo", root)
    return build_demo(DemoConfig.fast(), root=root)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch) -> Path:
    """A fresh data directory (frame cache, previews, runs) for this test; the test's folder is its import root
    (the web app imports only under ``RBFT_IMPORT_ROOTS``, and test videos live in ``tmp_path``)."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("RBFT_DATA_DIR", str(path))
    monkeypatch.setenv("RBFT_IMPORT_ROOTS", str(tmp_path))
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
    from rbft_core.data.importer import import_videos
    from sqlalchemy import select

    manifest = render_world(tmp_path / "world", WorldSpec(num_clips=12, num_frames=8, size=(112, 84), test_fraction=0.3))
    import_videos(db_url, "world", manifest.parent, manifest=manifest, fmt="jsonl", preset="smart-home")
    with session_scope(db_url) as s:
        for video in s.scalars(select(Video)):
            graph = video.meta["scene_graph"]
            queries.add_suggestion(s, video.id, model_id="scene-graph", prompt_version="rationale-v1",
                                   raw_text=str(graph), parse_status="ok", label_hint=True, mean_logprob=-1.0, **graph)
    return "world", db_url

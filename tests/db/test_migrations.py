"""The Alembic history builds exactly the schema in db/models.py, and goes back down cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from db.engine import alembic_config, init_db, make_engine
from db.models import Base


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nested' / 'dir' / 'm.db'}"


def test_head_matches_models(tmp_path: Path) -> None:
    engine = init_db(_url(tmp_path))
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
    assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}


def test_init_db_is_idempotent(tmp_path: Path) -> None:
    url = _url(tmp_path)
    assert init_db(url) is init_db(url)
    cfg = alembic_config(url)
    with make_engine(url).begin() as conn:  # a real second upgrade, not just the in-process cache
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        head = ScriptDirectory.from_config(cfg).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    url = _url(tmp_path)
    engine = init_db(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert "reviews" in inspect(engine).get_table_names()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = init_db(_url(tmp_path))  # migrations switch foreign keys off for a while: they must come back
    assert engine is make_engine(_url(tmp_path))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_0002_scores_existing_suggestions(tmp_path: Path) -> None:
    """Suggestions stored before the doubt columns existed get their score and reason on upgrade."""
    url = _url(tmp_path)
    engine = make_engine(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text("INSERT INTO datasets (id, name, preset, role, task, labels, criteria, created_at) "
                          "VALUES (1, 'h', 'smart-home', '', '', '[\"normal\", \"abnormal\"]', '', '2025-01-01')"))
        conn.execute(text("INSERT INTO videos (id, dataset_id, external_id, path, source_root, sha256, size_bytes, "
                          "split, label, readable, meta, created_at) VALUES (1, 1, 'v', '/v.mp4', '', 'ab', 0, "
                          "'train', 'abnormal', 1, '{}', '2025-01-01')"))
        conn.execute(text("INSERT INTO suggestions (video_id, model_id, prompt_version, subjects, attributes, actions, "
                          "scenes, conclusion, raw_text, parse_status, label_hint, mean_logprob, gen_params, created_at) "
                          "VALUES (1, 'm', 'p', 'a', 'b', 'c', 'd', 'This is normal.', '', 'ok', 1, -0.5, '{}', "
                          "'2025-01-01')"))
        command.upgrade(cfg, "head")
        score, reason = conn.execute(text("SELECT doubt_score, doubt_reason FROM suggestions")).one()
    assert reason == "conclusion says normal but label is abnormal" and score > 200

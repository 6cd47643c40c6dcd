"""The Alembic history builds exactly the schema in db/models.py, and goes back down cleanly."""

from __future__ import annotations


from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
import pytest
from sqlalchemy import inspect, text

from db.engine import alembic_config, init_db, make_engine
from db.models import Base
from db.search import SEARCH_OBJECTS, include_object

pytestmark = pytest.mark.both_backends  # each test runs on SQLite and on PostgreSQL


def test_head_matches_models(empty_db_url: str) -> None:
    engine = init_db(empty_db_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
    tables = set(inspect(engine).get_table_names()) - SEARCH_OBJECTS  # SQLite's FTS5 index and its shadow tables
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


def test_init_db_is_idempotent(empty_db_url: str) -> None:
    url = empty_db_url
    assert init_db(url) is init_db(url)
    cfg = alembic_config(url)
    with make_engine(url).begin() as conn:  # a real second upgrade, not just the in-process cache
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        head = ScriptDirectory.from_config(cfg).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head


def test_downgrade_to_base_and_back(empty_db_url: str) -> None:
    url = empty_db_url
    engine = init_db(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}  # the search index went too
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert "reviews" in inspect(engine).get_table_names()


def test_sqlite_pragmas(empty_db_url: str, db_backend: str) -> None:
    if db_backend != "sqlite":
        pytest.skip("SQLite pragmas only")
    engine = init_db(empty_db_url)  # migrations switch foreign keys off for a while: they must come back
    assert engine is make_engine(empty_db_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_0002_scores_existing_suggestions(empty_db_url: str) -> None:
    """Suggestions stored before the doubt columns existed get their score and reason on upgrade."""
    url = empty_db_url
    engine = make_engine(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text("INSERT INTO datasets (id, name, preset, role, task, labels, criteria, created_at) "
                          "VALUES (1, 'h', 'smart-home', '', '', '[\"normal\", \"abnormal\"]', '', '2025-01-01')"))
        conn.execute(text("INSERT INTO videos (id, dataset_id, external_id, path, source_root, sha256, size_bytes, "
                          "split, label, readable, meta, created_at) VALUES (1, 1, 'v', '/v.mp4', '', 'ab', 0, "
                          "'train', 'abnormal', TRUE, '{}', '2025-01-01')"))
        conn.execute(text("INSERT INTO suggestions (video_id, model_id, prompt_version, subjects, attributes, actions, "
                          "scenes, conclusion, raw_text, parse_status, label_hint, mean_logprob, gen_params, created_at) "
                          "VALUES (1, 'm', 'p', 'a', 'b', 'c', 'd', 'This is normal.', '', 'ok', TRUE, -0.5, '{}', "
                          "'2025-01-01')"))
        command.upgrade(cfg, "head")
        score, reason = conn.execute(text("SELECT doubt_score, doubt_reason FROM suggestions")).one()
    assert reason == "conclusion says normal but label is abnormal" and score > 200


def test_job_specs_migration_keeps_old_jobs_and_reads_their_dataset_and_model(empty_db_url: str) -> None:
    """0003 adds kind/dataset/model/spec path to jobs; rows from before keep their argv and gain dataset and model."""
    url = empty_db_url
    cfg = alembic_config(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(text("INSERT INTO jobs (kind, status, command, progress, progress_text, created_at) VALUES "
                          "('pipeline', 'succeeded', :a, 1.0, '', CURRENT_TIMESTAMP), "
                          "('import', 'failed', :b, 0.0, '', CURRENT_TIMESTAMP)"),
                     {"a": '["pipeline", "homes", "--model", "Qwen/Qwen2.5-VL-7B-Instruct", "--with-baselines"]',
                      "b": '["import", "doors", "/videos"]'})
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        rows = conn.execute(text("SELECT kind, status, dataset, model, spec_path FROM jobs ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("pipeline", "succeeded", "homes", "Qwen/Qwen2.5-VL-7B-Instruct", None),
                                        ("import", "failed", "doors", None, None)]

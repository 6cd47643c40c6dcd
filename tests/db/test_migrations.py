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
from rbft_core.review.doubt import FAILED_POINTS

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


def test_0005_fills_queue_columns_counters_and_search_from_existing_rows(empty_db_url: str) -> None:
    """Reviews made before 0005 get their queue columns, the counters and the search index on upgrade."""
    from db import counters
    from db import review_queries as rq
    from db.engine import session_factory

    url = empty_db_url
    cfg = alembic_config(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        conn.execute(text("INSERT INTO datasets (id, name, preset, role, task, labels, criteria, created_at) "
                          "VALUES (1, 'h', 'smart-home', '', '', '[\"normal\", \"abnormal\"]', '', '2025-01-01')"))
        for i, (label, split) in enumerate([("abnormal", "train"), ("normal", "train"), ("normal", "test")], 1):
            conn.execute(text("INSERT INTO videos (id, dataset_id, external_id, path, source_root, sha256, size_bytes, "
                              "split, label, readable, meta, created_at) VALUES (:i, 1, :e, '/v.mp4', '', :s, 0, "
                              ":split, :label, TRUE, '{}', '2025-01-01')"),
                         {"i": i, "e": f"clip_{i}", "s": f"{i:064x}", "split": split, "label": label})
        for i, (status, score) in enumerate([("failed", 300.5), ("ok", 2.5)], 1):
            conn.execute(text("INSERT INTO suggestions (id, video_id, model_id, prompt_version, subjects, attributes, "
                              "actions, scenes, conclusion, raw_text, parse_status, label_hint, mean_logprob, "
                              "gen_params, doubt_score, doubt_reason, created_at) VALUES (:i, :i, 'm', 'p', :t, 'b', "
                              "'c', 'd', 'This is normal.', '', :st, TRUE, -0.5, '{}', :sc, '', '2025-01-01')"),
                         {"i": i, "t": "a man in a hoodie" if i == 2 else "", "st": status, "sc": score})
        conn.execute(text("INSERT INTO reviews (id, video_id, suggestion_id, subjects, label, status, excluded, version, "
                          "updated_at) VALUES (1, 1, 1, NULL, NULL, 'pending', FALSE, 1, '2025-01-01'), "
                          "(2, 2, 2, 'a woman with a zebra', 'abnormal', 'accepted', TRUE, 3, '2025-01-01')"))
        command.upgrade(cfg, "0005")
        rows = conn.execute(text("SELECT id, dataset_id, split, queue_label, queue_key, edited, parse_failed "
                                 "FROM reviews ORDER BY id")).all()
        command.upgrade(cfg, "head")  # 0006 recomputes the doubt (queue_key) with flags; the rest stays
        keys = conn.execute(text("SELECT queue_key FROM reviews ORDER BY id")).scalars().all()
    assert [(r[0], r[1], r[2], r[3], r[4], bool(r[5]), bool(r[6])) for r in rows] == [
        (1, 1, "train", "abnormal", -300.5, False, True), (2, 1, "train", "abnormal", -2.5, True, False)]
    assert keys == [-(FAILED_POINTS * 100 + 0.5), -400.5]  # parse failed; contradiction (label abnormal, "normal")
    with session_factory(url)() as s:
        assert counters.stored(s, 1) == counters.recount(s, 1)
        assert rq.review_counts(s, 1) == {"pending": 1, "draft": 0, "accepted": 0, "edited": 1, "rejected": 0,
                                         "excluded": 1, "total": 2}
        found = rq.queue_neighbour(s, rq.QueueFilter(dataset_id=1, statuses=None, search="zebra"), None)
        assert found == 2
        assert rq.queue_neighbour(s, rq.QueueFilter(dataset_id=1, statuses=None, search="clip_1"), None) == 1


def test_0007_adds_responses_users_and_k_leaving_existing_rows_as_they_were(empty_db_url: str) -> None:
    """Datasets from before 0007 ask for one review per item (nothing changes for them); their rows stay as they
    were, and going back down to 0006 and up again keeps them."""
    url = empty_db_url
    cfg = alembic_config(url)
    engine = make_engine(url)
    review_columns = "id, video_id, suggestion_id, subjects, label, status, excluded, version, reviewer, queue_key"
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        conn.execute(text("INSERT INTO datasets (id, name, preset, role, task, labels, criteria, created_at) "
                          "VALUES (1, 'h', 'smart-home', '', '', '[\"normal\", \"abnormal\"]', '', '2025-01-01')"))
        conn.execute(text("INSERT INTO videos (id, dataset_id, external_id, path, source_root, sha256, size_bytes, "
                          "split, label, readable, meta, created_at) VALUES (1, 1, 'v', '/v.mp4', '', 'ab', 0, "
                          "'train', 'abnormal', TRUE, '{}', '2025-01-01')"))
        conn.execute(text("INSERT INTO suggestions (id, video_id, model_id, prompt_version, subjects, attributes, "
                          "actions, scenes, conclusion, raw_text, parse_status, label_hint, mean_logprob, gen_params, "
                          "doubt_score, doubt_reason, created_at) VALUES (1, 1, 'm', 'p', 'a', 'b', 'c', 'd', '', '', "
                          "'ok', TRUE, -0.5, '{}', 2.5, '', '2025-01-01')"))
        conn.execute(text("INSERT INTO reviews (id, video_id, suggestion_id, subjects, label, status, excluded, version, "
                          "reviewer, updated_at, dataset_id, split, queue_label, queue_key, edited, parse_failed, "
                          "search_doc) VALUES (1, 1, 1, 'a dog', 'normal', 'accepted', FALSE, 4, 'ann', '2025-01-01', "
                          "1, 'train', 'normal', -2.5, TRUE, FALSE, 'v a dog')"))
        command.upgrade(cfg, "0006")  # 0006 recomputes queue_key with flags; 0007 must leave every row as it is
        before = conn.execute(text(f"SELECT {review_columns} FROM reviews")).all()
        command.upgrade(cfg, "0007")
        assert conn.execute(text("SELECT reviews_per_item, adjudicators FROM datasets")).one()[0] == 1
        assert conn.execute(text(f"SELECT {review_columns} FROM reviews")).all() == before
        assert conn.execute(text("SELECT count(*) FROM videos")).scalar() == 1  # no dataset rebuild, no cascade
        conn.execute(text("INSERT INTO review_responses (dataset_id, video_id, suggestion_id, reviewer, rationale, "
                          "label, status, version, saved_at, created_at) VALUES (1, 1, 1, 'bob', '{}', 'normal', "
                          "'accepted', 1, '2025-01-02', '2025-01-02')"))
        command.downgrade(cfg, "0006")
        assert conn.execute(text(f"SELECT {review_columns} FROM reviews")).all() == before
        command.upgrade(cfg, "0007")
        assert conn.execute(text("SELECT count(*) FROM suggestions")).scalar() == 1
        command.upgrade(cfg, "head")
    from db import queries
    from db.engine import session_factory

    with session_factory(url)() as s:

        assert queries.get_dataset(s, "h").adjudicators == [] and queries.get_dataset(s, "h").reviews_per_item == 1


def test_0006_flags_existing_suggestions_and_refills_queue_columns_and_counters(empty_db_url: str) -> None:
    """Suggestions stored before 0006 are checked on upgrade: flags, bits, doubt; reviews and counters follow."""
    from db import counters
    from db import review_queries as rq
    from db.engine import session_factory
    from rbft_core.review.flags import FLAG_BITS

    url = empty_db_url
    cfg = alembic_config(url)
    engine = make_engine(url)
    texts = [("a dog", "medium, red jacket", "walking by", "porch, at night", "This is normal."),  # orphan
             ("a person", "an abnormal man", "walking by", "driveway", "This is abnormal."),  # leak
             ("a cat", "small, grey fur", "lying still", "backyard, during the day", "This is normal.")]  # clean
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        conn.execute(text("INSERT INTO datasets (id, name, preset, role, task, labels, criteria, created_at) "
                          "VALUES (1, 'h', 'smart-home', '', '', '[\"normal\", \"abnormal\"]', '', '2025-01-01')"))
        for i, (subjects, attributes, actions, scenes, conclusion) in enumerate(texts, 1):
            label = "abnormal" if i == 2 else "normal"
            conn.execute(text("INSERT INTO videos (id, dataset_id, external_id, path, source_root, sha256, size_bytes, "
                              "split, label, readable, meta, created_at) VALUES (:i, 1, :e, '/v.mp4', '', :s, 0, "
                              "'train', :label, TRUE, '{}', '2025-01-01')"),
                         {"i": i, "e": f"clip_{i}", "s": f"{i:064x}", "label": label})
            conn.execute(text("INSERT INTO suggestions (id, video_id, model_id, prompt_version, subjects, attributes, "
                              "actions, scenes, conclusion, raw_text, parse_status, label_hint, mean_logprob, "
                              "gen_params, doubt_score, doubt_reason, created_at) VALUES (:i, :i, 'm', 'p', :su, :at, "
                              ":ac, :sc, :co, '', 'ok', TRUE, -0.5, '{}', 0.5, '', '2025-01-01')"),
                         {"i": i, "su": subjects, "at": attributes, "ac": actions, "sc": scenes, "co": conclusion})
            conn.execute(text("INSERT INTO reviews (id, video_id, suggestion_id, status, excluded, version, updated_at, "
                              "dataset_id, split, queue_label, queue_key, edited, parse_failed, search_doc) VALUES "
                              "(:i, :i, :i, 'pending', FALSE, 1, '2025-01-01', 1, 'train', :label, -0.5, FALSE, FALSE, "
                              "'')"), {"i": i, "label": label})
        conn.execute(text("INSERT INTO dataset_counters (dataset_id, status, label, video_label, split, readable, "
                          "edited, excluded, parse_failed, n) VALUES (1, 'pending', 'normal', 'normal', 'train', TRUE, "
                          "FALSE, FALSE, FALSE, 2), (1, 'pending', 'abnormal', 'abnormal', 'train', TRUE, FALSE, "
                          "FALSE, FALSE, 1)"))
        command.upgrade(cfg, "head")
        sugg = conn.execute(text("SELECT flag_bits, doubt_score, doubt_reason FROM suggestions ORDER BY id")).all()
        reviews = conn.execute(text("SELECT flag_bits, queue_key, suggestion_id FROM reviews ORDER BY id")).all()
    assert [tuple(r) for r in sugg] == [
        (FLAG_BITS["orphan_subject"], 300.5, 'attributes say "jacket" (a person\'s), but subjects name no person'),
        (FLAG_BITS["label_leak"], 100.5, 'attributes names the label "abnormal"'),
        (0, 0.5, "likelihood -0.50/token")]
    assert [tuple(r) for r in reviews] == [(FLAG_BITS["orphan_subject"], -300.5, 1), (FLAG_BITS["label_leak"], -100.5, 2),
                                           (0, -0.5, 3)]
    with session_factory(url)() as s:
        assert counters.stored(s, 1) == counters.recount(s, 1)
        flagged = rq.QueueFilter(dataset_id=1, flags=FLAG_BITS["orphan_subject"])
        assert rq.queue_neighbour(s, flagged, None) == 1 and rq.queue_place(s, flagged, 1) == (1, 1)
        assert rq.queue_place(s, rq.QueueFilter(dataset_id=1, flags=0), 3) == (1, 1)
        item = rq.review_item(s, 1)
        assert item["suggestion"]["flags"] == [{"code": "orphan_subject", "reason": sugg[0][2]}]


def test_0009_rescores_stored_suggestions_with_the_subject_probability(empty_db_url: str) -> None:
    """0009 recomputes every suggestion's doubt from what it stored (flags, parse status, likelihood, the subject's
    log-probabilities: the whole subject's, else its least likely token's, else none); each review's queue_key follows;
    the flags and counters stay."""
    import json
    import math

    from db import counters
    from db.engine import session_factory

    url = empty_db_url
    cfg = alembic_config(url)
    engine = make_engine(url)
    unsure = {"code": "uncertain_subject", "reason": 'the model was unsure of the subject ("cat" at p = 0.20)'}
    stored = [  # parse status, flags, dimension_logprobs, doubt before (the 0006 rules), bits
        ("ok", [unsure], {"subjects": {"min_logprob": math.log(0.2), "token": "cat", "logprob": math.log(0.1)}},
         300.5, 4),
        ("ok", [unsure], {"subjects": {"min_logprob": math.log(0.2), "token": "cat"}}, 300.5, 4),  # no sum kept
        ("ok", [], {}, 0.5, 0),  # stored before 0006: no confidence, no subject term
        ("failed", [{"code": "empty_dimension", "reason": "all four dimensions are empty"}], {}, 1500.5, 16),
    ]
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
        conn.execute(text("INSERT INTO datasets (id, name, preset, role, task, labels, criteria, created_at) "
                          "VALUES (1, 'h', 'smart-home', '', '', '[\"normal\", \"abnormal\"]', '', '2025-01-01')"))
        for i, (status, flags, confidence, score, bits) in enumerate(stored, 1):
            conn.execute(text("INSERT INTO videos (id, dataset_id, external_id, path, source_root, sha256, size_bytes, "
                              "split, label, readable, meta, created_at) VALUES (:i, 1, :e, '/v.mp4', '', :s, 0, "
                              "'train', 'normal', TRUE, '{}', '2025-01-01')"),
                         {"i": i, "e": f"clip_{i}", "s": f"{i:064x}"})
            conn.execute(text("INSERT INTO suggestions (id, video_id, model_id, prompt_version, subjects, attributes, "
                              "actions, scenes, conclusion, raw_text, parse_status, label_hint, mean_logprob, "
                              "gen_params, doubt_score, doubt_reason, flags, flag_bits, dimension_logprobs, created_at) "
                              "VALUES (:i, :i, 'm', 'p', 'a cat', 'b', 'c', 'd', '', '', :st, TRUE, -0.5, '{}', :sc, '', "
                              ":f, :b, :dl, '2025-01-01')"),
                         {"i": i, "st": status, "sc": score, "f": json.dumps(flags), "b": bits,
                          "dl": json.dumps(confidence)})
            conn.execute(text("INSERT INTO reviews (id, video_id, suggestion_id, status, excluded, version, updated_at, "
                              "dataset_id, split, queue_label, queue_key, edited, parse_failed, search_doc, flag_bits) "
                              "VALUES (:i, :i, :i, 'pending', FALSE, 1, '2025-01-01', 1, 'train', 'normal', :k, FALSE, "
                              ":pf, '', :b)"), {"i": i, "k": -score, "pf": status == "failed", "b": bits})
        conn.execute(text("INSERT INTO dataset_counters (dataset_id, status, label, video_label, split, readable, "
                          "edited, excluded, parse_failed, flag_bits, n) VALUES "
                          "(1, 'pending', 'normal', 'normal', 'train', TRUE, FALSE, FALSE, FALSE, 4, 2), "
                          "(1, 'pending', 'normal', 'normal', 'train', TRUE, FALSE, FALSE, FALSE, 0, 1), "
                          "(1, 'pending', 'normal', 'normal', 'train', TRUE, FALSE, FALSE, TRUE, 16, 1)"))
        command.upgrade(cfg, "head")
        sugg = conn.execute(text("SELECT doubt_score, doubt_reason, flag_bits FROM suggestions ORDER BY id")).all()
        keys = conn.execute(text("SELECT queue_key FROM reviews ORDER BY id")).scalars().all()
    assert [r[0] for r in sugg] == pytest.approx([100 * 8 * 0.9 + 0.5, 100 * 8 * 0.8 + 0.5, 0.5,
                                                  FAILED_POINTS * 100 + 0.5])
    assert [r[1] for r in sugg] == [unsure["reason"], unsure["reason"], "likelihood -0.50/token", "parse failed"]
    assert [r[2] for r in sugg] == [4, 4, 0, 16]
    assert keys == pytest.approx([-r[0] for r in sugg])
    with session_factory(url)() as s:
        assert counters.stored(s, 1) == counters.recount(s, 1)

"""``curated_examples``: the one definition of a video's effective rationale, label and edited flag."""

from __future__ import annotations

import pytest

from db import queries as q
from db import curated_queries as cq
from db.engine import session_scope
from tests.export_world import TRICKY_TEXT, build_world

pytestmark = pytest.mark.both_backends  # each test runs on SQLite and on PostgreSQL


def _rows(db_url, **kw):
    with session_scope(db_url) as s:
        ds = q.get_dataset(s, "homes")
        return {r["external_id"]: r for r in cq.curated_examples(s, ds.id, **kw)}


def test_effective_rationale_label_and_edited(db_url, tmp_path):
    build_world(db_url, tmp_path)
    rows = _rows(db_url, statuses=None, include_excluded=True)
    assert len(rows) == 6
    v0, v1, v2 = rows["normal/v0.mp4"], rows["abnormal/v1.mp4"], rows["normal/v2.mp4"]
    # accepted without touching the fields: the suggestion is the rationale
    assert v0["status"] == "accepted" and not v0["edited"] and v0["review_fields"] is None
    assert v0["rationale"] == v0["suggestion_fields"] == {
        "subjects": "person 0", "attributes": "attr 0", "actions": "walks 0", "scenes": "porch 0"}
    # edited two fields: the untouched ones keep the suggestion's text; the label correction wins
    assert v1["edited"] and v1["rationale"] == {
        "subjects": "two people ✓", "attributes": TRICKY_TEXT, "actions": 'one says "hi", then leaves',
        "scenes": "porch 1"}
    assert (v1["label"], v1["video_label"], v1["review_label"]) == ("normal", "abnormal", "normal")
    assert v2["status"] == "draft" and v2["edited"] and v2["rationale"]["scenes"] == "garage at night"
    assert v1["reviewer"] == "ben" and v1["model_id"] == "tiny-vlm" and v1["prompt_version"] == "rationale-v1"
    assert v1["updated_at"] and v1["version"] == 2
    assert rows["normal/v4.mp4"]["excluded"] and rows["abnormal/v5.mp4"]["status"] == "pending"


def test_filters(db_url, tmp_path):
    build_world(db_url, tmp_path)
    assert set(_rows(db_url)) == {"normal/v0.mp4", "abnormal/v1.mp4"}  # accepted, excluded left out
    assert set(_rows(db_url, include_excluded=True)) == {"normal/v0.mp4", "abnormal/v1.mp4", "normal/v4.mp4"}
    assert set(_rows(db_url, statuses=["accepted", "draft"], edited=True)) == {"abnormal/v1.mp4", "normal/v2.mp4"}
    assert set(_rows(db_url, statuses=None, edited=False)) == {"normal/v0.mp4", "abnormal/v3.mp4", "abnormal/v5.mp4"}
    assert set(_rows(db_url, statuses=None, labels=["abnormal"])) == {"abnormal/v3.mp4", "abnormal/v5.mp4"}
    assert set(_rows(db_url, statuses=None, splits=["test"], include_excluded=True)) == {
        "normal/v4.mp4", "abnormal/v5.mp4"}


def test_review_keeps_the_suggestion_it_was_made_on(db_url, tmp_path):
    world = build_world(db_url, tmp_path)
    with session_scope(db_url) as s:  # a newer generation (--overwrite) after the review was saved
        q.add_suggestion(s, world.ids["normal/v0.mp4"], model_id="other", prompt_version="rationale-v2",
                         parse_status="ok", subjects="newer text")
    row = _rows(db_url)["normal/v0.mp4"]
    assert row["rationale"]["subjects"] == "person 0" and row["model_id"] == "tiny-vlm"
    pending = _rows(db_url, statuses=["pending"])["abnormal/v5.mp4"]
    assert pending["model_id"] == "tiny-vlm"  # still points at its newest suggestion
    with session_scope(db_url) as s:
        q.add_suggestion(s, world.ids["abnormal/v5.mp4"], model_id="other", prompt_version="rationale-v2",
                         parse_status="ok", subjects="newest")
    assert _rows(db_url, statuses=["pending"])["abnormal/v5.mp4"]["rationale"]["subjects"] == "newest"

"""Review integrity (issue #14): a regeneration never changes a decided review's text; moving on from an item
someone else saved meanwhile, without typing, records nothing; unsaved typing can be kept on the server."""

from __future__ import annotations

import pytest

from db import queries
from db.engine import session_scope
from rbft_core.errors import ConflictError
from rbft_core.review import workspace as review
from tests.review_world import make_review_world

pytestmark = pytest.mark.both_backends

NEW_TEXT = dict(subjects="two cats", attributes="grey, striped", actions="the cats sleep on the mat",
                scenes="a kitchen at noon", conclusion="Normal.")


@pytest.fixture
def world(tmp_path, db_url, data_dir):
    return make_review_world(db_url, tmp_path / "w", extra=2)


def _regenerate(db_url, item) -> None:
    """What a regeneration job stores: a new suggestion for the video, with different text."""
    with session_scope(db_url) as s:
        queries.add_suggestion(s, item.video_id, model_id="rerun", prompt_version="rationale-v1", parse_status="ok",
                               raw_text=str(NEW_TEXT), **NEW_TEXT)


def _fields(item, **changes):
    return {**item.fields, **changes}


@pytest.mark.parametrize("action", ["accept", "edit", "reject", "draft"])
def test_regeneration_never_changes_a_decided_reviews_text(db_url, world, action):
    rid = world["clip_1"]
    item = review.load_item(db_url, rid)
    typed = _fields(item, scenes="a porch in the rain") if action in ("edit", "draft") else item.fields
    if action == "draft":
        review.autosave(db_url, rid, expected_version=1, reviewer="ann", fields=typed, label=None)
    else:
        review.save(db_url, rid, expected_version=1, reviewer="ann", action=action, fields=typed, label=None)
    decided = review.load_item(db_url, rid)
    _regenerate(db_url, decided)

    assert review.adopt_newest(db_url, rid, "ann") == "adopted"
    after = review.load_item(db_url, rid)
    assert after.suggestion["model_id"] == "rerun"  # the new suggestion is shown beside the review
    assert after.fields == decided.fields  # ... but the effective text is exactly what the reviewer decided
    assert (after.status, after.label) == (decided.status, decided.label)
    assert after.edited  # it now differs from the (new) model text, and says so
    newest = review.history(db_url, rid)[0]
    assert "regenerated" in newest["note"] and f"the {decided.status} text is kept" in newest["note"]


def test_regeneration_of_a_pending_review_shows_the_new_text(db_url, world):
    rid = world["clip_1"]
    item = review.load_item(db_url, rid)
    review.save(db_url, rid, expected_version=1, reviewer="ann", action="accept", fields=item.fields, label=None)
    with session_scope(db_url) as s:  # back to pending by a later save (e.g. a bulk action undone)
        queries.save_review(s, rid, expected_version=2, reviewer="lead", status="pending")
    _regenerate(db_url, item)
    assert review.adopt_newest(db_url, rid, "lead") == "adopted"
    after = review.load_item(db_url, rid)
    assert after.fields["subjects"] == NEW_TEXT["subjects"] and after.status == "pending" and not after.edited


def test_next_without_edits_after_someone_else_saved_records_nothing(db_url, world):
    rid = world["clip_0"]
    ann = review.load_item(db_url, rid)  # ann opens the item ...
    ben = review.load_item(db_url, rid)
    review.save(db_url, rid, expected_version=ben.version, reviewer="ben", action="edit",
                fields=_fields(ben, actions="ben's text"), label=None)  # ... ben saves first ...
    # ... and ann presses Next without typing: the page sends what it showed her at version 1
    assert not review.autosave(db_url, rid, expected_version=ann.version, reviewer="ann", fields=ann.fields,
                               label=ann.label)
    rows = review.history(db_url, rid)
    assert [row["refused"] for row in rows] == [None]  # ben's save only: no "refused" revision for ann
    assert review.load_item(db_url, rid).fields["actions"] == "ben's text"

    # had she typed something, it is refused and kept, as before
    with pytest.raises(ConflictError, match="saved by ben"):
        review.autosave(db_url, rid, expected_version=ann.version, reviewer="ann",
                        fields=_fields(ann, actions="ann's text"), label=ann.label)
    rows = review.history(db_url, rid)
    assert rows[0]["refused"] and ("actions", "ben's text", "ann's text") in rows[0]["changes"]


def test_next_without_edits_on_a_twice_saved_item_records_nothing(db_url, world):
    """The text the page showed is found for any version, also after an earlier save and a label change."""
    rid = world["clip_3"]
    first = review.load_item(db_url, rid)
    review.save(db_url, rid, expected_version=1, reviewer="ann", action="edit",
                fields=_fields(first, subjects="a man"), label="abnormal")
    shown = review.load_item(db_url, rid)  # version 2, as ann's next page shows it
    review.save(db_url, rid, expected_version=2, reviewer="ben", action="reject", fields=shown.fields,
                label="normal")
    assert not review.autosave(db_url, rid, expected_version=2, reviewer="ann", fields=shown.fields,
                               label=shown.label)
    assert not any(row["refused"] for row in review.history(db_url, rid))

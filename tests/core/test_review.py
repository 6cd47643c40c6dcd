"""Review logic: doubt-first queue, saves with an audit trail, conflicts, bounds, bulk actions, media."""

from __future__ import annotations

import pytest

from rbft_core.review import workspace as review
from rbft_core.tabs import review as review_tab_logic
from rbft_core.review import media as review_media
from rbft_core.review.doubt import doubt_of
from rbft_core.errors import ConfigError, ConflictError, DataError
from rbft_core.review.workspace import ReviewFilter
from tests.review_world import SUGGESTIONS, make_review_world, queue_order as _queue

pytestmark = pytest.mark.both_backends  # review logic runs on SQLite and on PostgreSQL


@pytest.fixture
def world(tmp_path, db_url, data_dir):
    return make_review_world(db_url, tmp_path / "w", extra=2)


def test_doubt_rules():
    common = dict(fields=dict(subjects="a", attributes="b", actions="c", scenes="d"), labels=["normal", "abnormal"])
    failed = doubt_of(parse_status="failed", conclusion="", label="normal", mean_logprob=-0.1, **common)
    contra = doubt_of(parse_status="ok", conclusion="Clearly abnormal.", label="normal", mean_logprob=-0.1, **common)
    low = doubt_of(parse_status="ok", conclusion="normal", label="normal", mean_logprob=-3.24, **common)
    fine = doubt_of(parse_status="ok", conclusion="normal", label="normal", mean_logprob=-0.2, **common)
    assert failed.score > contra.score > low.score > fine.score
    assert failed.reason == "parse failed"
    assert contra.reason == "conclusion says abnormal but label is normal"
    assert low.reason == "low likelihood (-3.2/token)"
    # "abnormal" contains "normal": a conclusion naming abnormal does not agree with label normal
    assert doubt_of(parse_status="ok", conclusion="not abnormal, normal", label="normal", mean_logprob=None,
                    **common).score < 100


def test_queue_is_doubt_first_with_reasons(db_url, world):
    flt = ReviewFilter(dataset="homes")
    order = _queue(db_url, flt)
    assert order[:2] == [world["clip_2"], world["clip_0"]]  # parse failure, then contradiction
    assert order[2:] == [world["clip_1"], world["clip_4"], world["clip_3"]]  # lowest likelihood first
    item = review.load_item(db_url, order[1])
    assert item.suggestion["doubt_reason"] == "conclusion says normal but label is abnormal"
    assert review.queue_place(db_url, flt, order[1]) == (2, 5)
    assert review.queue_place(db_url, ReviewFilter(dataset="homes", label="normal"), order[1]) == (0, 3)
    assert review.neighbour(db_url, flt, order[-1]) == order[0]  # wraps around
    assert review.neighbour(db_url, flt, order[0], backwards=True) == order[-1]


def test_filters(db_url, world):
    assert _queue(db_url, ReviewFilter(dataset="homes", parse_failed=True)) == [world["clip_2"]]
    assert set(_queue(db_url, ReviewFilter(dataset="homes", label="abnormal"))) == {world["clip_0"], world["clip_2"]}
    assert _queue(db_url, ReviewFilter(dataset="homes", search="TERRIER")) == [world["clip_1"], world["clip_4"],
                                                                           world["clip_3"]]
    assert _queue(db_url, ReviewFilter(dataset="homes", search="100%_")) == []  # LIKE wildcards are literal
    assert _queue(db_url, ReviewFilter(dataset="homes", split="test")) == []
    with pytest.raises(ConfigError, match="status filter must be one of"):
        ReviewFilter(dataset="homes", status="done")


def test_flag_filters_select_by_flag(db_url, world):
    """The review world's flags: clip_2 failed (all dimensions empty), clip_0's conclusion contradicts its label."""
    assert _queue(db_url, ReviewFilter(dataset="homes", flag="contradiction")) == [world["clip_0"]]
    assert _queue(db_url, ReviewFilter(dataset="homes", flag="empty_dimension")) == [world["clip_2"]]
    assert _queue(db_url, ReviewFilter(dataset="homes", flag="flagged")) == [world["clip_2"], world["clip_0"]]
    assert _queue(db_url, ReviewFilter(dataset="homes", flag="unflagged")) == [world["clip_1"], world["clip_4"],
                                                                              world["clip_3"]]
    assert _queue(db_url, ReviewFilter(dataset="homes", flag="label_leak")) == []
    assert _queue(db_url, ReviewFilter(dataset="homes", flag="flagged", search="hoodie")) == [world["clip_0"]]
    assert review.queue_place(db_url, ReviewFilter(dataset="homes", flag="contradiction"), world["clip_0"]) == (1, 1)
    item = review.load_item(db_url, world["clip_0"])
    assert item.suggestion["flags"] == [{"code": "contradiction",
                                         "reason": "conclusion says normal but label is abnormal"}]
    with pytest.raises(ConfigError, match="flag filter must be empty or one of flagged, unflagged, contradiction"):
        ReviewFilter(dataset="homes", flag="typo")


def test_queue_status_is_place_length_and_counts_in_one_call(db_url, world):
    flt = ReviewFilter(dataset="homes")
    order = _queue(db_url, flt)
    status = review.queue_status(db_url, flt, order[1])
    assert (status["place"], status["size"]) == review.queue_place(db_url, flt, order[1]) == (2, len(order))
    assert status["counts"] == review.review_counts(db_url, "homes")
    item = review.load_item(db_url, order[0])
    review.save(db_url, order[0], expected_version=item.version, reviewer="ann", action="accept",
                fields=item.fields, label=item.label)
    after = review.queue_status(db_url, flt, order[1])
    assert (after["place"], after["size"]) == (1, len(order) - 1)  # the saved item left the "todo" queue
    assert after["counts"]["accepted"] == status["counts"]["accepted"] + 1


def _fields(item, **changes):
    return {**item.fields, **changes}


def test_save_edit_accept_reject_and_history(db_url, world):
    rid = world["clip_0"]
    item = review.load_item(db_url, rid)
    review.save(db_url, rid, expected_version=1, reviewer="bob", action="edit",
                fields=_fields(item, actions="  takes the parcel and runs  "), label="abnormal")
    item = review.load_item(db_url, rid)
    assert item.status == "accepted" and item.edited and item.version == 2 and item.reviewer == "bob"
    assert item.stored["actions"] == "takes the parcel and runs" and item.stored["subjects"] is None
    assert review.review_counts(db_url, "homes")["edited"] == 1

    untouched = world["clip_1"]
    with pytest.raises(ConfigError, match="press Save edit"):
        review.save(db_url, untouched, expected_version=1, reviewer="bob", action="accept",
                    fields=_fields(review.load_item(db_url, untouched), scenes="changed"), label=None)
    review.save(db_url, untouched, expected_version=1, reviewer="bob", action="reject",
                fields=review.load_item(db_url, untouched).fields, label="abnormal")
    rejected = review.load_item(db_url, untouched)
    assert rejected.status == "rejected" and rejected.label == "abnormal" and not rejected.edited
    rows = review.history(db_url, untouched)
    assert rows[0]["reviewer"] == "bob" and ("status", "pending", "rejected") in rows[0]["changes"]
    assert ("label", None, "abnormal") in rows[0]["changes"]
    counts = review.review_counts(db_url, "homes")
    assert (counts["pending"], counts["edited"], counts["rejected"]) == (3, 1, 1)


def test_label_must_be_in_the_label_set(db_url, world):
    item = review.load_item(db_url, world["clip_0"])
    with pytest.raises(ConfigError, match="label 'cat' is not one of"):
        review.save(db_url, item.review_id, expected_version=1, reviewer="a", action="edit", fields=item.fields,
                    label="cat")


def test_very_long_text_is_refused_with_a_message(db_url, world):
    item = review.load_item(db_url, world["clip_1"])
    with pytest.raises(ConfigError, match=r"subjects is 4,001 characters; the limit is 4,000 per field"):
        review.save(db_url, item.review_id, expected_version=1, reviewer="a", action="edit",
                    fields=_fields(item, subjects="x" * 4001), label=None)
    assert review.load_item(db_url, item.review_id).version == 1  # nothing saved
    review.save(db_url, item.review_id, expected_version=1, reviewer="a", action="edit",
                fields=_fields(item, subjects="y" * 4000), label=None)


def test_two_tabs_second_save_refused_and_both_kept(db_url, world):
    rid = world["clip_0"]
    tab1 = review.load_item(db_url, rid)
    tab2 = review.load_item(db_url, rid)
    review.save(db_url, rid, expected_version=tab1.version, reviewer="ann", action="edit",
                fields=_fields(tab1, actions="ann's text"), label=None)
    with pytest.raises(ConflictError) as err:
        review.save(db_url, rid, expected_version=tab2.version, reviewer="ben", action="edit",
                    fields=_fields(tab2, actions="ben's text"), label=None)
    message = str(err.value)
    assert "saved by ann" in message and "ann's text" in message and "history panel" in message
    item = review.load_item(db_url, rid)
    assert item.fields["actions"] == "ann's text" and item.version == 2  # not overwritten
    rows = review.history(db_url, rid)
    assert rows[0]["refused"] and rows[0]["reviewer"] == "ben"
    assert ("actions", "ann's text", "ben's text") in rows[0]["changes"]
    assert rows[1]["reviewer"] == "ann" and not rows[1]["refused"]


def test_autosave_only_when_text_differs(db_url, world):
    rid = world["clip_1"]
    item = review.load_item(db_url, rid)
    assert not review.autosave(db_url, rid, expected_version=1, reviewer="a", fields=item.fields, label=item.label)
    assert review.autosave(db_url, rid, expected_version=1, reviewer="a", fields=_fields(item, scenes="garden"),
                           label=item.label)
    draft = review.load_item(db_url, rid)
    assert draft.status == "draft" and draft.fields["scenes"] == "garden"
    assert not review.autosave(db_url, rid, expected_version=2, reviewer="a", fields=draft.fields, label=draft.label)
    assert review.load_item(db_url, rid).version == 2


def test_bulk_accept_untouched_and_exclude(db_url, world):
    item = review.load_item(db_url, world["clip_3"])
    review.autosave(db_url, item.review_id, expected_version=1, reviewer="a", fields=_fields(item, actions="sits"),
                    label=None)
    flt = ReviewFilter(dataset="homes", label="normal")
    assert review.bulk_accept_untouched(db_url, flt, "lead") == 2  # clip_1, clip_4; clip_3 has a draft
    assert review.load_item(db_url, world["clip_3"]).status == "draft"
    assert review.load_item(db_url, world["clip_1"]).status == "accepted"
    assert review.bulk_exclude(db_url, ReviewFilter(dataset="homes", status="all", label="normal"), "lead") == 3
    assert review.review_counts(db_url, "homes")["excluded"] == 3
    assert review.history(db_url, world["clip_1"])[0]["changes"] == [("excluded", False, True)]


def test_find_item(db_url, world):
    assert review.find_item(db_url, "homes", "clip_1") == world["clip_1"]
    with pytest.raises(DataError, match="no reviewable video 'nope' in dataset homes"):
        review.find_item(db_url, "homes", "nope")


def test_field_diff():
    assert review.field_diff("a big dog", "a big dog") == []
    assert review.field_diff("a big dog", "a small dog") == [("=", "a "), ("-", "big"), ("+", "small"), ("=", " dog")]


def test_media_has_frames_with_timestamps(db_url, world):
    item = review.load_item(db_url, world["clip_1"])
    media = review_media.item_media(item.video_path, item.sha256, item.suggestion["gen_params"])
    assert media.video and not media.notice
    assert len(media.frames) == 8 and media.frames[0][1].startswith("t=") and media.frames[0][1].endswith(" s")
    # the exact times go to the player's frame step (the captions are rounded)
    assert [f"t={t:.2f} s" for t in media.times_s] == [caption for _path, caption in media.frames]
    assert media.times_s == sorted(media.times_s) and 0 < media.times_s[0] < media.times_s[-1] < 2.0


def test_deleted_video_still_opens_with_a_notice(db_url, world):
    item = review.load_item(db_url, world["clip_1"])
    params = item.suggestion["gen_params"]
    review_media.item_media(item.video_path, item.sha256, params)  # frames now cached
    __import__("os").remove(item.video_path)
    media = review_media.item_media(item.video_path, item.sha256, params)
    assert media.video is None and "missing from disk" in media.notice and "re-import" in media.notice
    assert len(media.frames) == 8 and len(media.times_s) == 8  # from the frame cache


def test_regenerate_starts_a_generate_job_for_one_video(db_url, world, monkeypatch):
    started = {}
    monkeypatch.setattr(review_tab_logic, "start_job", lambda url, spec, **kw: started.update(spec=spec) or 7)
    item = review.load_item(db_url, world["clip_0"])
    assert review_tab_logic.regenerate(db_url, item.review_id) == 7
    spec = started["spec"]
    assert (spec.task, spec.dataset, spec.video_ids, spec.overwrite) == ("generate", "homes", (item.video_id,), True)
    assert spec.model == "Qwen/Qwen2.5-VL-7B-Instruct" and spec.label_hint and spec.split is None


def test_adopt_newest_after_regeneration(db_url, world):
    from db import queries
    from db.engine import session_scope

    rid = world["clip_1"]
    item = review.load_item(db_url, rid)
    review.save(db_url, rid, expected_version=1, reviewer="a", action="accept", fields=item.fields, label=None)
    with session_scope(db_url) as s:  # what `rbft generate --video-id ... --overwrite` adds
        queries.add_suggestion(s, item.video_id, model_id="m", prompt_version="rationale-v1", parse_status="ok",
                               **{k: v for k, v in SUGGESTIONS[1][2].items() if k != "parse_status"})
    assert review.load_item(db_url, rid).newer_suggestion_id is not None
    assert review.adopt_newest(db_url, rid, "a") == "adopted"
    adopted = review.load_item(db_url, rid)
    assert adopted.newer_suggestion_id is None and adopted.suggestion["model_id"] == "m"
    assert review.adopt_newest(db_url, rid, "a") == "none"
    with session_scope(db_url) as s:  # a rerun that failed to parse never replaces a good rationale
        queries.add_suggestion(s, item.video_id, model_id="m2", prompt_version="rationale-v1", parse_status="failed")
    assert review.adopt_newest(db_url, rid, "a") == "worse"
    assert review.load_item(db_url, rid).suggestion["model_id"] == "m"


def test_unplayable_codec_gets_a_preview_made_in_the_background(tmp_path, data_dir, monkeypatch):
    """MPEG-4 Part 2 does not play in browsers: the page shows a notice at once, the preview comes next time."""
    import time

    from tests.helpers import make_video

    clip = make_video(tmp_path / "old.mp4", num_frames=8, codec="mpeg4")
    monkeypatch.setattr(review_media, "PREVIEW_WAIT_S", 0.0)
    first = review_media.item_media(str(clip), "", {"num_frames": 4})
    assert first.video is None and "being made" in first.notice and len(first.frames) == 4
    deadline = time.monotonic() + 60
    while (media := review_media.item_media(str(clip), "", {"num_frames": 4})).video is None:
        assert time.monotonic() < deadline, "the preview was never made"
        time.sleep(0.2)
    assert media.video.endswith(".mp4") and media.video != str(clip) and not media.notice

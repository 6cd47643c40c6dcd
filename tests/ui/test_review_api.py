"""The review handlers through gradio_client: the Blocks launched in-process on a free port.

gradio_client keeps one session per Client, so the gr.State values (open item, version, filter)
carry from call to call as they do in a browser tab; two Clients are two tabs.
"""

from __future__ import annotations

import os

import pytest

from tests.review_load import BOXES, OPEN, api_form, api_item
from tests.review_world import free_port, make_review_world

pytestmark = pytest.mark.both_backends  # the DB paths run on SQLite and on PostgreSQL

BLANK = ("",) * len(BOXES)  # every box empty (what an empty page sends)


@pytest.fixture
def served(tmp_path, db_url, data_dir):
    from ui.app import build_app, page_assets

    ids = make_review_world(db_url, tmp_path / "w")
    demo = build_app(db_url)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **page_assets())
    yield f"http://127.0.0.1:{port}/", ids
    demo.close()


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def _item(result):
    """Name the outputs an item-changing endpoint returns (tests.review_load.api_item): the item, then its queue
    place and the dataset's counts, in the same response."""
    return api_item(result)


def _fields(item):
    return api_form(item)


def test_open_edit_accept_reject_through_the_api(served):
    url, ids = served
    client = _client(url)
    item = _item(client.predict("homes", *OPEN, api_name="/review_open"))
    assert "clip_2" in item["header"] and "1 of 3 in this filter" in item["place"]
    assert item["video"] and len(item["frames"]) == 8 and item["frames"][0]["caption"] == "t=0.12 s"
    assert "parse failed" in item["suggestion"] and "pending <b>3</b>" in item["counts"]

    assert "Why it is here: parse failed" in item["suggestion"]
    assert "⚑ empty dimension</b>: all four dimensions are empty" in item["suggestion"]

    edited = ["a cat", "small, grey", "walks past", "porch, day", "", "", "", ""]
    item = _item(client.predict("carol", *edited, "abnormal", api_name="/review_edit"))
    assert "clip_0" in item["header"]
    assert ("⚑ conclusion contradicts the label</b>: conclusion says normal but label is abnormal"
            in item["suggestion"])
    item = _item(client.predict("carol", *_fields(item), api_name="/review_reject"))
    assert "clip_1" in item["header"]
    item = _item(client.predict("carol", *_fields(item), api_name="/review_accept"))
    assert "Nothing to review" in item["header"]
    counts = item["counts"]
    assert "accepted <b>1</b>" in counts and "edited <b>1</b>" in counts and "rejected <b>1</b>" in counts

    back = _item(client.predict("carol", *BLANK, None, "clip_2", api_name="/review_jump"))
    assert [back["subjects"], back["scenes"]] == ["a cat", "porch, day"] and "by carol" in back["history"]
    assert "<ins>a cat</ins>" in back["diff"]


def test_the_flag_filter_opens_a_queue_of_that_flag(served):
    url, ids = served
    item = _item(_client(url).predict("homes", *OPEN[:-1], "contradiction", api_name="/review_open"))
    assert "clip_0" in item["header"] and "1 of 1 in this filter" in item["place"]


def test_next_autosaves_a_draft_and_previous_goes_back(served):
    url, ids = served
    client = _client(url)
    first = _item(client.predict("homes", *OPEN, api_name="/review_open"))
    fields = _fields(first)
    fields[2] = "the camera shows nothing useful"
    second = _item(client.predict("dave", *fields, api_name="/review_next"))
    assert "clip_0" in second["header"]
    back = _item(client.predict("dave", *_fields(second), api_name="/review_prev"))
    assert "clip_2" in back["header"] and back["actions"] == "the camera shows nothing useful"
    assert "draft" in back["status"] and "by dave" in back["history"]
    skipped = _item(client.predict("dave", "x", "x", "x", "x", "", "", "", "", "abnormal", api_name="/review_skip"))
    assert "clip_0" in skipped["header"]
    again = _item(client.predict("dave", *BLANK, None, "clip_2", api_name="/review_jump"))
    assert again["subjects"] == ""  # skip saved nothing


def test_bad_input_is_refused_with_a_message(served):
    from gradio_client.exceptions import AppError

    url, ids = served
    client = _client(url)
    item = _item(client.predict("homes", *OPEN, api_name="/review_open"))
    with pytest.raises(AppError, match="subjects is 5,000 characters; the limit is 4,000 per field"):
        client.predict("erin", "x" * 5000, *_fields(item)[1:], api_name="/review_edit")
    with pytest.raises(AppError, match="no reviewable video"):
        client.predict("erin", *_fields(item), "missing-id", api_name="/review_jump")
    with pytest.raises(AppError, match="not found"):
        client.predict("nope", *OPEN, api_name="/review_open")


def test_second_tab_save_is_refused_and_kept(served):
    from gradio_client.exceptions import AppError

    url, ids = served
    tab1, tab2 = _client(url), _client(url)
    item1 = _item(tab1.predict("homes", *OPEN, api_name="/review_open"))
    _item(tab2.predict("homes", *OPEN, api_name="/review_open"))
    tab1.predict("fay", "fay's cat", *_fields(item1)[1:], api_name="/review_edit")
    with pytest.raises(AppError, match="saved by fay"):
        tab2.predict("gus", "gus's dog", *_fields(item1)[1:], api_name="/review_edit")
    reopened = _item(tab2.predict("gus", *BLANK, None, "clip_2", api_name="/review_jump"))
    assert reopened["subjects"] == "fay's cat"
    assert "REFUSED" in reopened["history"] and "gus&#x27;s dog" in reopened["history"]


def test_deleted_video_opens_with_a_notice(served, db_url):
    from rbft_core.review import workspace as review

    url, ids = served
    os.remove(review.load_item(db_url, ids["clip_2"]).video_path)
    item = _item(_client(url).predict("homes", *OPEN, api_name="/review_open"))
    assert "clip_2" in item["header"] and item["video"] is None
    assert "missing from disk" in item["notice"] and "parse failed" in item["suggestion"]


def test_bulk_accept_untouched(served):
    url, ids = served
    client = _client(url)
    client.predict("homes", *OPEN, api_name="/review_open")
    item = _item(client.predict("hal", api_name="/review_bulk_accept"))
    assert "clip_2" in item["header"] and "accepted" in item["status"]  # the open item stays open
    place, counts = item["place"], item["counts"]
    assert "not in this filter" in place and "accepted <b>3</b>" in counts and "pending <b>0</b>" in counts


@pytest.mark.slow
def test_regenerate_runs_a_job_and_shows_the_new_suggestion(tmp_path, db_url, data_dir, tiny_model_dir):
    """Regenerate (Alt+G) with a real tiny model: `rbft generate --video-id` as a job, then the item reloads."""
    import time

    from db import queries
    from db.engine import session_scope
    from ui.app import build_app, page_assets

    ids = make_review_world(db_url, tmp_path / "w")
    # clip_1's review uses a tiny-model rationale that failed to parse (random weights write noise, so the rerun
    # fails too; a rerun that parsed worse than the suggestion in use would be stored but not shown)
    with session_scope(db_url) as s:
        video_id = queries.get_review(s, ids["clip_1"]).video_id
        old = queries.add_suggestion(s, video_id, model_id=str(tiny_model_dir.resolve()), prompt_version="rationale-v1",
                                     subjects="old text", attributes="a", actions="b", scenes="c", parse_status="failed",
                                     gen_params={"num_frames": 4, "max_pixels": 4 * 28 * 28, "max_new_tokens": 6})
        queries.save_review(s, ids["clip_1"], expected_version=1, reviewer="setup", suggestion_id=old.id)
    demo = build_app(db_url)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **page_assets())
    try:
        client = _client(f"http://127.0.0.1:{port}/")
        client.predict("homes", *OPEN, api_name="/review_open")
        item = _item(client.predict("ida", *BLANK, None, "clip_1", api_name="/review_jump"))
        assert item["subjects"] == "old text"
        assert "started" in client.predict(api_name="/review_regenerate")[-1]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            out = client.predict("ida", *_fields(item), api_name="/review_regen_poll")  # timer, job, item
            if "succeeded" in out[1] or "failed" in out[1]:
                break
            time.sleep(1)
        assert "succeeded" in out[1], out[1]
        reloaded = _item(out[2:])
        assert "clip_1" in reloaded["header"] and reloaded["subjects"] != "old text"
        assert "rationale-v1" in reloaded["suggestion"] and str(tiny_model_dir.resolve()) in reloaded["suggestion"]
    finally:
        demo.close()


@pytest.mark.parametrize("saved_before", [False, True], ids=["pending", "draft"])
def test_typing_during_a_regeneration_is_saved_before_the_item_reloads(tmp_path, db_url, data_dir, monkeypatch,
                                                                      saved_before):
    """A regeneration that finishes while the reviewer types reloads the item; what was typed is saved as a draft
    first (and shown again), never replaced by the stored or the new text."""
    import gradio as gr

    from db import queries
    from db.engine import session_scope
    from rbft_core.review import workspace as review
    from ui import review_tab

    ids = make_review_world(db_url, tmp_path / "w")
    with gr.Blocks():
        tab = review_tab.build_review_tab()
    rid = ids["clip_0"]
    if saved_before:
        shown = review.load_item(db_url, rid)
        review.autosave(db_url, rid, expected_version=shown.version, reviewer="ida",
                        fields={**shown.fields, "actions": "an earlier draft"}, label=shown.label)
    item = review.load_item(db_url, rid)  # what the page shows while the regeneration runs
    with session_scope(db_url) as s:  # the regeneration writes a newer suggestion, then its job succeeds
        video_id = queries.get_review(s, rid).video_id
        queries.add_suggestion(s, video_id, model_id="m", prompt_version="rationale-v1", subjects="new subjects",
                               attributes="new", actions="new", scenes="new", conclusion="", parse_status="ok",
                               mean_logprob=-0.1, gen_params={})
    monkeypatch.setattr(review_tab, "job_status", lambda _db, job: {"id": job, "status": "succeeded",
                                                                      "progress": 1.0, "progress_text": "done"})
    typed = {**item.fields, "scenes": "half a sentence the reviewer is typi"}
    values = {tab.regen: {"job": 7, "review": rid}, tab.state: review.ReviewFilter(dataset="homes").to_dict(),
              tab.review_id: rid, tab.version: item.version, tab.nav: [], tab.reviewer: "ida", tab.label: item.label,
              tab.shown: {"review": rid, "at": "2026-01-01T10:00:00+00:00"}, tab.dims: list(item.names),
              **{box: typed[dim] for box, dim in zip(tab.fields.boxes(), item.names)},
              **{box: "" for box in tab.fields.boxes()[len(item.names):]}}
    out = review_tab.on_regen_tick(tab, db_url, values, request=None)

    scenes_box = tab.fields.boxes()[item.names.index("scenes")]
    assert out[scenes_box].value == typed["scenes"] and out[scenes_box].visible  # the reload shows the typed text
    stored = review.load_item(db_url, rid)
    assert stored.status == "draft" and stored.fields["scenes"] == typed["scenes"]
    assert all(stored.fields[d] == typed[d] for d in item.names)  # and the newer suggestion replaced none of it
    assert any(rev["reviewer"] == "ida" for rev in review.history(db_url, rid))

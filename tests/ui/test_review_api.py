"""The review handlers through gradio_client: the Blocks launched in-process on a free port.

gradio_client keeps one session per Client, so the gr.State values (open item, version, filter)
carry from call to call as they do in a browser tab; two Clients are two tabs.
"""

from __future__ import annotations

import os

import pytest

from tests.review_world import free_port, make_review_world

OPEN = ("todo", "", "", "any", False, "")  # status, label, split, edited, parse failed, search


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
    """Name the 14 outputs an item-changing endpoint returns (its gr.State outputs are not sent)."""
    names = ("header", "video", "frames", "notice", "suggestion", "subjects", "attributes", "actions", "scenes",
             "label", "status", "diff", "history", "counts")
    item = dict(zip(names, result))
    if isinstance(item["label"], dict):  # the label comes back as a Dropdown update (value + choices)
        item["label"] = item["label"].get("value")
    return item


def _fields(item):
    return [item["subjects"], item["attributes"], item["actions"], item["scenes"], item["label"]]


def test_open_edit_accept_reject_through_the_api(served):
    url, ids = served
    client = _client(url)
    item = _item(client.predict("homes", *OPEN, api_name="/review_open"))
    assert "clip_2" in item["header"] and "1 of 3" in item["header"]
    assert item["video"] and len(item["frames"]) == 8 and item["frames"][0]["caption"] == "t=0.12 s"
    assert "parse failed" in item["suggestion"] and "pending <b>3</b>" in item["counts"]

    edited = ["a cat", "small, grey", "walks past", "porch, day"]
    item = _item(client.predict("carol", *edited, "abnormal", api_name="/review_edit"))
    assert "clip_0" in item["header"]
    item = _item(client.predict("carol", *_fields(item), api_name="/review_reject"))
    assert "clip_1" in item["header"]
    item = _item(client.predict("carol", *_fields(item), api_name="/review_accept"))
    assert "Nothing to review" in item["header"]
    assert "accepted <b>1</b>" in item["counts"] and "edited <b>1</b>" in item["counts"]
    assert "rejected <b>1</b>" in item["counts"]

    back = _item(client.predict("carol", "", "", "", "", None, "clip_2", api_name="/review_jump"))
    assert [back["subjects"], back["scenes"]] == ["a cat", "porch, day"] and "by carol" in back["history"]
    assert "<ins>a cat</ins>" in back["diff"]


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
    skipped = _item(client.predict("dave", "x", "x", "x", "x", "abnormal", api_name="/review_skip"))
    assert "clip_0" in skipped["header"]
    again = _item(client.predict("dave", "", "", "", "", None, "clip_2", api_name="/review_jump"))
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
    reopened = _item(tab2.predict("gus", "", "", "", "", None, "clip_2", api_name="/review_jump"))
    assert reopened["subjects"] == "fay's cat"
    assert "REFUSED" in reopened["history"] and "gus&#x27;s dog" in reopened["history"]


def test_deleted_video_opens_with_a_notice(served, db_url):
    from rbft_core import review

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
    assert "accepted <b>3</b>" in item["counts"] and "pending <b>0</b>" in item["counts"]

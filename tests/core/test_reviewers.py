"""Several reviewers per item (issue #15 part 2): responses per reviewer, per-reviewer queues, adjudication, k=1
unchanged, roles."""

from __future__ import annotations

import pytest

from db import curated_queries, queries
from db import response_queries as rsq
from db.engine import session_scope
from rbft_core import auth
from rbft_core.errors import ConfigError, ConflictError, DataError
from rbft_core.review import adjudication, responses
from rbft_core.review import workspace as review
from rbft_core.review.workspace import ReviewFilter
from tests.review_world import SUGGESTIONS, make_review_world, queue_order as _queue

pytestmark = pytest.mark.both_backends

TEXT = {dim: SUGGESTIONS[0][2][dim] for dim in ("subjects", "attributes", "actions", "scenes")}


@pytest.fixture
def world(tmp_path, db_url, data_dir):
    return make_review_world(db_url, tmp_path / "w")


def _answer(db_url, rid, who, action="edit", version=0, shown_at="2026-01-01T10:00:00+00:00", **fields):
    text = {**TEXT, **fields}
    label = text.pop("label", "abnormal")
    responses.save(db_url, rid, expected_version=version, reviewer=who, action=action, fields=text, label=label,
                   shown_at=shown_at)


def _set_k(db_url, k, adjudicators=None):
    return adjudication.change_settings(db_url, "homes", "admin", reviews_per_item=k, adjudicators=adjudicators)


def _responses(db_url, rid):
    item = review.load_item(db_url, rid)
    with session_scope(db_url) as s:
        return rsq.item_responses(s, item.video_id)


def test_one_reviewer_per_item_saves_the_review_as_before_and_keeps_the_response(db_url, world):
    rid = world["clip_0"]
    _answer(db_url, rid, "ann", version=1, subjects="a courier with a parcel")
    item = review.load_item(db_url, rid)
    assert item.status == "accepted" and item.fields["subjects"] == "a courier with a parcel" and item.version == 2
    (resp,) = _responses(db_url, rid)
    assert resp["reviewer"] == "ann" and resp["status"] == "accepted" and resp["version"] == 1
    assert resp["rationale"]["subjects"] == "a courier with a parcel" and resp["rationale"]["scenes"] == TEXT["scenes"]
    assert resp["shown_at"] == "2026-01-01T10:00:00+00:00" and resp["saved_at"] > resp["shown_at"]
    _answer(db_url, rid, "ann", action="reject", version=2)  # a second save edits the same response
    (resp,) = _responses(db_url, rid)
    assert resp["version"] == 2 and resp["status"] == "rejected"
    assert responses.load(db_url, rid, "ann").version == 3  # k = 1: the page works on the review's version


def test_two_reviewers_answer_apart_then_the_adjudicator_writes_what_trains(db_url, world):
    assert _set_k(db_url, 2) == {"reviews_per_item": 2, "adjudicators": []}
    todo = ReviewFilter(dataset="homes", reviewer="ann")
    first = _queue(db_url, todo)[0]
    assert first == world["clip_2"]  # doubt first, as for one reviewer
    _answer(db_url, first, "ann", subjects="a man in a hoodie")
    assert first not in _queue(db_url, todo)  # answered: out of ann's queue ...
    assert review.queue_place(db_url, todo, None) == (0, 2)
    bob = ReviewFilter(dataset="homes", reviewer="bob")
    assert _queue(db_url, bob)[0] == first  # ... still in bob's
    shown = responses.load(db_url, first, "bob")
    assert shown.version == 0 and shown.fields["subjects"] == ""  # bob sees the model's text, never ann's
    assert review.load_item(db_url, first).status == "pending"  # the final review is untouched
    assert adjudication.neighbour(db_url, "homes", None) is None

    _answer(db_url, first, "bob", subjects="a man in a dark hoodie", label="normal")
    final = review.load_item(db_url, first)
    assert final.status == "ready" and first not in _queue(db_url, bob) + _queue(db_url, todo)
    assert "2 of 2 responses in" in review.history(db_url, first)[0]["note"]
    assert adjudication.neighbour(db_url, "homes", None) == first
    adj = adjudication.load(db_url, first)
    assert [r["reviewer"] for r in adj.submitted] == ["ann", "bob"] and adj.k == 2
    assert ("+", "a man in a dark hoodie") in adj.responses[1]["diffs"]["subjects"]
    merged = adjudication.pick(adj, "bob", adjudication.pick(adj, "ann", {}), dimension="subjects")
    assert merged["subjects"] == "a man in a dark hoodie" and merged["scenes"] == TEXT["scenes"]
    adjudication.finalise(db_url, first, expected_version=final.version, adjudicator="carol", action="accept",
                          fields=merged, label="abnormal", picked="ann")
    done = review.load_item(db_url, first)
    assert done.status == "accepted" and done.reviewer == "carol" and done.fields["subjects"] == "a man in a dark hoodie"
    assert "adjudicated from 2 responses: ann (accepted), bob (accepted)" in review.history(db_url, first)[0]["note"]
    with session_scope(db_url) as s:
        (row,) = [r for r in curated_queries.curated_examples(s, queries.get_dataset(s, "homes").id)
                  if r["review_id"] == first]
    assert row["rationale"]["subjects"] == "a man in a dark hoodie" and row["label"] == "abnormal"
    with pytest.raises(ConflictError, match="finalised .* responses to it are closed"):
        _answer(db_url, first, "dan")


def test_a_reviewer_reviewing_twice_edits_their_own_response(db_url, world):
    _set_k(db_url, 3)
    rid = world["clip_1"]
    _answer(db_url, rid, "ann", subjects="first try")
    _answer(db_url, rid, "ann", version=1, subjects="second try")
    (resp,) = _responses(db_url, rid)
    assert resp["version"] == 2 and resp["rationale"]["subjects"] == "second try"
    with pytest.raises(ConflictError, match="is at version 2 .* edited version 1"):
        _answer(db_url, rid, "ann", version=1, subjects="a stale tab")  # another tab still on version 1
    with pytest.raises(ConflictError, match="is at version 2 .* edited version 0"):
        _answer(db_url, rid, "ann", version=0, subjects="a second response")  # never a second row
    assert len(_responses(db_url, rid)) == 1
    with session_scope(db_url) as s:
        assert rsq.submitted_count(s, review.load_item(db_url, rid).video_id) == 1


def test_adjudicating_with_fewer_than_k_responses_names_the_item_the_count_and_the_fix(db_url, world):
    _set_k(db_url, 2)
    rid = world["clip_0"]
    _answer(db_url, rid, "ann")
    item = review.load_item(db_url, rid)
    with pytest.raises(DataError, match=r"clip_0 has 1 of 2 responses .* wait until 1 more reviewer submitted, or "
                                        r"let an admin lower .*`rbft review-settings homes --k 1`"):
        adjudication.finalise(db_url, rid, expected_version=item.version, adjudicator="carol", action="accept",
                              fields=TEXT, label="abnormal")
    assert review.load_item(db_url, rid).status == "pending"


def test_a_draft_does_not_count_and_changing_k_re_sorts_open_items(db_url, world):
    _set_k(db_url, 2)
    rid = world["clip_1"]
    saved = responses.autosave(db_url, rid, expected_version=0, reviewer="ann", fields={**TEXT, "actions": "typing"},
                               label="normal")
    assert saved and _responses(db_url, rid)[0]["status"] == "draft"
    assert rid in _queue(db_url, ReviewFilter(dataset="homes", reviewer="ann"))  # a draft is not an answer
    _answer(db_url, rid, "ann", version=1)
    _answer(db_url, rid, "bob")
    assert review.load_item(db_url, rid).status == "ready"
    _set_k(db_url, 3)  # raised: back with the reviewers
    assert review.load_item(db_url, rid).status == "pending"
    _set_k(db_url, 2)
    assert review.load_item(db_url, rid).status == "ready"
    with session_scope(db_url) as s:
        from db import counters
        ds = queries.get_dataset(s, "homes").id
        assert counters.stored(s, ds) == counters.recount(s, ds)
        assert counters.review_counts(s, ds)["ready"] == 1
    with pytest.raises(ConfigError, match="nothing is accepted in bulk"):
        review.bulk_accept_untouched(db_url, ReviewFilter(dataset="homes"), "admin")


def test_roles_decide_who_adjudicates_and_who_sets_k(db_url, world):
    auth.add_user(db_url, "rita", "reviewer", "long enough pw")
    auth.add_user(db_url, "adam", "adjudicator", "long enough pw")
    auth.add_user(db_url, "ada", "adjudicator", "long enough pw")
    auth.add_user(db_url, "boss", "admin", "long enough pw")
    check = auth.login_checker(db_url)
    assert check("rita", "long enough pw") and not check("rita", "wrong") and not check("nobody", "long enough pw")
    assert "long enough pw" not in str(auth.list_users(db_url))
    with pytest.raises(ConfigError, match="rita is a reviewer; changing the review settings of homes needs the admin"):
        adjudication.change_settings(db_url, "homes", "rita", reviews_per_item=2, login="rita")
    adjudication.change_settings(db_url, "homes", "boss", reviews_per_item=1, adjudicators=["ada"], login="boss")
    rid = world["clip_0"]
    with session_scope(db_url) as s:
        rsq.save_response(s, video_id=review.load_item(db_url, rid).video_id, reviewer="rita", expected_version=0,
                          rationale=TEXT, label="abnormal", status="accepted", suggestion_id=None)
    item = review.load_item(db_url, rid)
    finalise = dict(expected_version=item.version, action="accept", fields=TEXT, label="abnormal")
    with pytest.raises(ConfigError, match="rita is a reviewer; adjudicating homes needs the adjudicator role"):
        adjudication.finalise(db_url, rid, adjudicator="rita", login="rita", **finalise)
    with pytest.raises(ConfigError, match="adjudication of dataset homes is assigned to ada, not to adam"):
        adjudication.finalise(db_url, rid, adjudicator="adam", login="adam", **finalise)
    adjudication.finalise(db_url, rid, adjudicator="ada", login="ada", **finalise)
    assert review.load_item(db_url, rid).reviewer == "ada"
    with pytest.raises(ConfigError, match="at least 8 characters"):
        auth.add_user(db_url, "short", "reviewer", "pw")
    with pytest.raises(ConfigError, match="role must be one of reviewer, adjudicator, admin"):
        auth.add_user(db_url, "odd", "owner", "long enough pw")


def test_users_and_review_settings_from_the_cli(db_url, world, capsys, monkeypatch):
    import io
    import json

    from rbft_core.cli.main import main

    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert main(["users", "add", "cara", "--role", "adjudicator", "--password-stdin", "--db", db_url]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "add", "dan", "--password-stdin", "--db", db_url]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert main(["users", "list", "--json", "--db", db_url]) == 0
    assert json.loads(capsys.readouterr().out) == {"users": [{"name": "cara", "role": "adjudicator"}]}
    assert auth.role_of(db_url, "cara") == "adjudicator" and auth.role_of(db_url, None) == "admin"
    assert main(["review-settings", "homes", "--k", "2", "--adjudicator", "cara", "--json", "--db", db_url]) == 0
    assert json.loads(capsys.readouterr().out) == {"reviews_per_item": 2, "adjudicators": ["cara"]}
    assert main(["review-settings", "homes", "--k", "0", "--db", db_url]) == 2
    assert "reviews per item must be between 1 and 20, got 0" in capsys.readouterr().err
    assert main(["users", "role", "cara", "admin", "--db", db_url]) == 0 and auth.role_of(db_url, "cara") == "admin"
    assert main(["users", "remove", "cara", "--db", db_url]) == 0
    with pytest.raises(ConfigError, match="has no admin yet"):  # --auth db needs someone to sign in as admin
        auth.login_checker(db_url)

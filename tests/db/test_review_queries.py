"""Review-workspace queries: doubt stored at insert, the keyset queue, counts, one-video generation."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from db import queries as q
from db import review_queries as rq
from rbft_core.errors import ConfigError
from rbft_core.review.doubt import FAILED_POINTS

pytestmark = pytest.mark.both_backends  # each test runs on SQLite and on PostgreSQL


def _world(session: Session) -> tuple[int, list[int]]:
    ds = q.get_or_create_dataset(session, "home", labels=["normal", "abnormal"])
    ids = []
    for i, label in enumerate(["abnormal", "normal", "normal"]):
        ids.append(q.add_video(session, ds.id, external_id=f"v{i}", path=f"/v{i}.mp4", sha256=f"{i:064x}",
                               label=label, split="train").id)
    return ds.id, ids


def test_add_suggestion_stores_doubt(session: Session) -> None:
    _, ids = _world(session)
    contra = q.add_suggestion(session, ids[0], model_id="m", prompt_version="p", subjects="a", attributes="b",
                              actions="c", scenes="d", conclusion="normal visit", parse_status="ok", mean_logprob=-0.5)
    failed = q.add_suggestion(session, ids[1], model_id="m", prompt_version="p", parse_status="failed")
    assert contra.doubt_reason == "conclusion says normal but label is abnormal" and contra.doubt_score == 400.5
    assert contra.flags == [{"code": "contradiction", "reason": contra.doubt_reason}] and contra.flag_bits == 1
    assert failed.doubt_reason == "parse failed" and failed.doubt_score == FAILED_POINTS * 100
    assert [f["code"] for f in failed.flags] == ["empty_dimension"]


def test_queue_neighbour_is_keyset_in_doubt_order(session: Session) -> None:
    ds_id, ids = _world(session)
    for vid, lp in zip(ids, (-0.1, -2.5, -0.7)):
        q.add_suggestion(session, vid, model_id="m", prompt_version="p", subjects="a", attributes="b", actions="c",
                         scenes="d", conclusion="", parse_status="ok", mean_logprob=lp)
    flt = rq.QueueFilter(dataset_id=ds_id)
    reviews = {rq.review_item(session, r)["video"]["id"]: r for r in range(1, 4)}
    first = rq.queue_neighbour(session, flt, None)
    second = rq.queue_neighbour(session, flt, first)
    third = rq.queue_neighbour(session, flt, second)
    assert [first, second, third] == [reviews[ids[1]], reviews[ids[2]], reviews[ids[0]]]
    assert rq.queue_neighbour(session, flt, third) is None
    assert rq.queue_neighbour(session, flt, third, backwards=True) == second
    assert rq.queue_place(session, flt, second) == (2, 3) and rq.queue_place(session, flt, None) == (0, 3)


def test_save_review_may_repoint_the_suggestion_but_nothing_else(session: Session) -> None:
    _, ids = _world(session)
    old = q.add_suggestion(session, ids[0], model_id="m", prompt_version="p", parse_status="ok")
    review_id = q.get_review(session, 1).id
    q.save_review(session, review_id, expected_version=1, reviewer="a", status="accepted")
    new = q.add_suggestion(session, ids[0], model_id="m", prompt_version="p", parse_status="ok")
    assert q.get_review(session, review_id).suggestion_id == old.id  # saved reviews are left alone
    q.save_review(session, review_id, expected_version=2, reviewer="a", suggestion_id=new.id)
    assert q.get_review(session, review_id).suggestion_id == new.id
    with pytest.raises(ConfigError, match="cannot save review field"):
        q.save_review(session, review_id, expected_version=3, reviewer="a", video_id=2)


def test_videos_for_generation_by_id(session: Session) -> None:
    ds_id, ids = _world(session)
    todo = q.videos_for_generation(session, ds_id, None, "m", "p", overwrite=True, video_ids=[ids[2]])
    assert [v.id for v in todo] == [ids[2]]


def test_generate_cli_takes_video_ids() -> None:
    from rbft_core.cli.main import build_parser

    args = build_parser().parse_args(["generate", "d", "--model", "m", "--video-id", "3", "--video-id", "4"])
    assert args.video_ids == [3, 4]

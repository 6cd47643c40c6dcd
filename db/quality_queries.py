"""What the review quality figures read: every review of a dataset with its suggestion, and every submitted
response with the model and prompt of the suggestion its reviewer was shown. Plain dicts; flush, never commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from db.models import Review, ReviewResponse, Suggestion, Video
from db.review_queries import SUBMITTED

__all__ = ["quality_rows"]


def quality_rows(session: Session, dataset_id: int) -> dict[str, list[dict[str, Any]]]:
    """``{"items": [...], "responses": [...]}`` of a dataset.

    items: per review (one per video with a suggestion): ``video_id``, ``external_id``, ``video_label``, the
    review's ``status``, ``label`` (correction or None) and ``rationale`` (the dimensions the reviewer set), and its
    suggestion's ``s_rationale``, ``conclusion``, ``model_id``, ``prompt_version`` (None without one). responses: the
    submitted ones (accepted / rejected; drafts are not answers), with ``shown_at`` / ``saved_at`` as stored.
    """
    items = session.execute(
        select(Review.video_id, Video.external_id, Video.label.label("video_label"), Review.status, Review.label,
               Review.rationale, Suggestion.rationale.label("s_rationale"), Suggestion.conclusion,
               Suggestion.model_id, Suggestion.prompt_version, Suggestion.id.label("sid"))
        .join(Video, Video.id == Review.video_id)
        .outerjoin(Suggestion, Suggestion.id == Review.suggestion_id)
        .where(Review.dataset_id == dataset_id)
        .order_by(Review.video_id)).mappings().all()
    shown = aliased(Suggestion)
    responses = session.execute(
        select(ReviewResponse.video_id, ReviewResponse.reviewer, ReviewResponse.label, ReviewResponse.status,
               ReviewResponse.rationale, ReviewResponse.shown_at, ReviewResponse.saved_at,
               ReviewResponse.suggestion_id, shown.model_id, shown.prompt_version)
        .outerjoin(shown, shown.id == ReviewResponse.suggestion_id)
        .where(ReviewResponse.dataset_id == dataset_id, ReviewResponse.status.in_(SUBMITTED))
        .order_by(ReviewResponse.video_id, ReviewResponse.id)).mappings().all()
    return {"items": [dict(row) for row in items], "responses": [dict(row) for row in responses]}

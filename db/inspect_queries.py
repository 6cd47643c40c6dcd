"""Queries for the Inspect tab, attention maps and masking experiments. Flush, never commit."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Dataset, Run, Video
from rbft_core.errors import DataError

__all__ = ["video_rows", "get_video_row", "inspectable_runs"]


def _row(v: Video) -> dict[str, Any]:
    return {"video_id": v.id, "external_id": v.external_id, "path": v.path, "sha256": v.sha256, "label": v.label,
            "split": v.split, "meta": dict(v.meta or {}), "width": v.width, "height": v.height,
            "duration_s": v.duration_s, "fps": v.fps}


def video_rows(session: Session, dataset_id: int, *, splits: Optional[Iterable[str]] = None,
               video_ids: Optional[Iterable[int]] = None) -> list[dict[str, Any]]:
    """Readable videos of a dataset (with their meta, e.g. the demo world's per-frame boxes), oldest first."""
    stmt = select(Video).where(Video.dataset_id == dataset_id, Video.readable.is_(True)).order_by(Video.id)
    if splits is not None:
        stmt = stmt.where(Video.split.in_(list(splits)))
    if video_ids is not None:
        stmt = stmt.where(Video.id.in_(list(video_ids)))
    return [_row(v) for v in session.scalars(stmt)]


def get_video_row(session: Session, video_id: int) -> dict[str, Any]:
    video = session.get(Video, video_id)
    if video is None:
        raise DataError(f"video {video_id} not found; pick a video of the dataset")
    return _row(video)


def inspectable_runs(session: Session, dataset_name: str) -> list[dict[str, Any]]:
    """Finished runs of a dataset that hold a model (zero-shot, direct SFT, Stage I, RB-FT), newest first."""
    stmt = (select(Run).join(Dataset, Dataset.id == Run.dataset_id)
            .where(Dataset.name == dataset_name, Run.status == "succeeded").order_by(Run.created_at.desc()))
    return [{"run_id": r.id, "kind": r.kind, "base_model": r.base_model, "parent": r.parent_run_id,
             "accuracy": ((r.metrics or {}).get("eval", {}).get("test") or {}).get("accuracy")}
            for r in session.scalars(stmt)]

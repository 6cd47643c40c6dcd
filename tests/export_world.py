"""A small curated dataset for export tests: six real videos, suggestions and reviews in every state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from db import queries
from db.engine import session_scope
from db.models import Video
from rbft_core.data.importer import import_videos
from tests.helpers import make_video

__all__ = ["CuratedWorld", "build_world", "TRICKY_TEXT"]

# Quotes, commas, a newline and non-ASCII: what breaks naive CSV / JSON writers.
TRICKY_TEXT = 'a "tall" courier, in red;\nthen a café sign ☕'


@dataclass
class CuratedWorld:
    db_url: str
    dataset: str
    src: Path
    ids: dict[str, int]  # external id ("normal/v0.mp4") -> video id
    review_ids: dict[str, int]


def _suggest(session, video_id: int, i: int) -> None:
    queries.add_suggestion(
        session, video_id, model_id="tiny-vlm", prompt_version="rationale-v1", parse_status="ok",
        subjects=f"person {i}", attributes=TRICKY_TEXT if i == 1 else f"attr {i}", actions=f"walks {i}",
        scenes=f"porch {i}", conclusion="normal",
    )


def _review(session, review_id: int, reviewer: str, **changes) -> None:
    review = queries.get_review(session, review_id)
    queries.save_review(session, review_id, expected_version=review.version, reviewer=reviewer, **changes)


def build_world(db_url: str, root: Path, name: str = "homes") -> CuratedWorld:
    """v0 accepted untouched; v1 accepted, edited, label corrected; v2 draft edited; v3 rejected;
    v4 accepted but excluded; v5 pending. Splits: v0..v3 train, v4 and v5 test (via a manifest)."""
    src = root / "src"
    lines = ["path,label,split"]
    for i in range(6):
        label = "abnormal" if i % 2 else "normal"
        make_video(src / label / f"v{i}.mp4", num_frames=4, size=(32, 32), color_seed=i)
        lines.append(f"{label}/v{i}.mp4,{label},{'test' if i >= 4 else 'train'}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_videos(db_url, name, src, manifest=root / "manifest.csv", labels=["normal", "abnormal"])
    assert report.imported == 6, report.failed
    with session_scope(db_url) as session:
        ds = queries.get_dataset(session, name)
        videos = sorted(ds.videos, key=lambda v: v.external_id)
        ids = {v.external_id: v.id for v in videos}
        for i, video in enumerate(sorted(videos, key=lambda v: int(Path(v.external_id).stem[1:]))):
            _suggest(session, video.id, i)
        session.flush()
        rev = {ext: session.get(Video, vid).review.id for ext, vid in ids.items()}
    with session_scope(db_url) as session:
        _review(session, rev["normal/v0.mp4"], "ana", status="accepted")
        _review(session, rev["abnormal/v1.mp4"], "ben", status="accepted", subjects="two people ✓",
                actions='one says "hi", then leaves', label="normal")
        _review(session, rev["normal/v2.mp4"], "ana", status="draft", scenes="garage at night")
        _review(session, rev["abnormal/v3.mp4"], "ben", status="rejected")
        _review(session, rev["normal/v4.mp4"], "ana", status="accepted", excluded=True)
    return CuratedWorld(db_url=db_url, dataset=name, src=src, ids=ids, review_ids=rev)

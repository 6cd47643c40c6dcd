"""A moderation dataset with five rationale dimensions: the paper's four plus an optional "speech" (on-screen text
and speech). Generated clips, imported through the importer with the preset's dimensions, as a user would."""

from __future__ import annotations

from pathlib import Path

from rbft_core.models.prompts import DEFAULT_DIMENSIONS, Dimension, dimensions_text

__all__ = ["SPEECH", "FIVE", "FIVE_NAMES", "FIVE_TEXT", "LABELS", "make_five_dimension_world", "suggest"]

SPEECH = Dimension("speech", "on-screen text and speech", required=False)
FIVE = (*DEFAULT_DIMENSIONS, SPEECH)
FIVE_NAMES = tuple(d.name for d in FIVE)
FIVE_TEXT = dimensions_text(FIVE)  # what a user types: one "name: description" per line, "speech?: ..." optional
LABELS = ["hateful", "offensive", "normal"]


def make_five_dimension_world(db_url: str, root: Path, *, dataset: str = "mod5", clips: int = 6) -> str:
    """Import ``clips`` generated videos (labels in turn, all train but the last two) into a new moderation dataset
    whose dimensions are ``FIVE``; returns its name."""
    from rbft_core.data.importer import import_videos
    from tests.helpers import make_video

    src = root / "clips"
    lines = ["path,label,split,id"]
    for i in range(clips):
        label = LABELS[i % len(LABELS)]
        make_video(src / f"c{i}.mp4", num_frames=6, size=(64, 48), color_seed=100 + i)
        lines.append(f"c{i}.mp4,{label},{'test' if i >= clips - 2 else 'train'},clip_{i}")
    manifest = root / "mod5.csv"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_videos(db_url, dataset, src, manifest=manifest, preset="moderation", labels=LABELS,
                           dimensions=FIVE)
    assert report.imported == clips, report.failed
    return dataset


def suggest(db_url: str, dataset: str) -> dict[str, int]:
    """A suggestion per video as generation stores it (speech where the clip "has" some); external id -> review id."""
    from db import queries
    from db.engine import session_scope

    out = {}
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        for video in sorted(ds.videos, key=lambda v: v.external_id):
            i = int(video.external_id.split("_")[1])
            queries.add_suggestion(
                s, video.id, model_id="tiny", prompt_version="rationale-v1", parse_status="ok", mean_logprob=-1.0 - i,
                subjects=f"a speaker {i}", attributes="adult, dark jacket", actions="talks to the camera",
                scenes="a bedroom, evening", speech="" if i % 2 else f"a sign reading 'go away {i}'",
                conclusion="This is normal.", raw_text="...")
        s.flush()
        for video in ds.videos:
            out[video.external_id] = video.review.id
    return out

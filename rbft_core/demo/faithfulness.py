"""The demo report's faithfulness measurements, per test clip, with the project's masking and attention modules.

- masking: ``rbft_core.inspection.masking.run_experiment`` (a ``MaskSpec``) with the demo's per-frame
  critical-object boxes (``meta["boxes"]``): per clip, correct on the original frames, with the critical object
  blacked out, and the mean over ``k_random`` same-size random boxes (seeded by clip, so every run sees the same
  random boxes and the arms can be compared clip by clip);
- attention share: ``rbft_core.inspection.attention.attention_maps`` (the answer position's attention on the
  video) -> ``attention_share`` inside the critical-object boxes, beside the boxes' share of the frame area
  (what uniform attention would give).
Both use the run's own sampling (from its spec).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from db import inspect_queries as iq
from db import queries
from db.engine import session_scope
from rbft_core.data.frame_cache import default_frame_cache
from rbft_core.data.video import sample_frames
from rbft_core.inspection.attention import attention_maps, attention_share
from rbft_core.inspection.masking import load_inspect_model, run_experiment
from rbft_core.inspection.regions import frame_boxes_from_list, regions_from_frame_boxes
from rbft_core.models.loading import sample_spec_for
from rbft_core.models.prompts import classification_prompt, dataset_preset
from rbft_core.specs.inspection import MaskSpec
from rbft_core.training.run_sampling import resolve_sampling

__all__ = ["faithfulness", "masking_per_clip", "attention_per_clip"]


def faithfulness(db_url: Optional[str], dataset: str, run_id: str, *, k_random: int = 5, seed: int = 0,
                 split: str = "test") -> dict:
    """Per test clip: masking outcomes and attention share of one trained run (see the module doc)."""
    masking = masking_per_clip(db_url, dataset, run_id, k_random=k_random, seed=seed, split=split)
    attention = attention_per_clip(db_url, dataset, run_id, split=split)
    return {"run_id": run_id, "k_random": k_random, "seed": seed, **masking, **attention}


def masking_per_clip(db_url: Optional[str], dataset: str, run_id: str, *, k_random: int, seed: int,
                     split: str = "test") -> dict:
    cfg = MaskSpec(dataset=dataset, runs=(run_id,), regions_source="meta", fill="black", k_random=k_random,
                   seed=seed, split=split, bootstrap=0)
    result = run_experiment(db_url, dataset, cfg)
    videos = result.videos
    return {"mask_spec": cfg.to_dict(), "mask_clips": [v["external_id"] for v in videos],
            "original": [int(v["original"]["correct"]) for v in videos],
            "critical": [int(v["critical"]["correct"]) for v in videos],
            "random": [float(np.mean([t["correct"] for t in v["random"]])) for v in videos],
            "masked_share": [float(v["masked_share"]) for v in videos]}


def attention_per_clip(db_url: Optional[str], dataset: str, run_id: str, *, split: str = "test") -> dict:
    """Attention share inside the critical-object boxes and the boxes' area share, per clip with boxes."""
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        prompt = classification_prompt(dataset_preset(ds))
        rows = iq.video_rows(s, ds.id, splits=[split])
    sampling, _ = resolve_sampling(db_url, run_id)
    lm = load_inspect_model(db_url, run_id)
    spec = sample_spec_for(lm.processor, num_frames=sampling.num_frames, fps=sampling.fps,
                           max_frames=sampling.max_frames, max_pixels=sampling.max_pixels)
    clips, shares, areas = [], [], []
    for row in rows:
        per_frame = (row.get("meta") or {}).get("boxes")
        if not per_frame:
            continue
        video = sample_frames(row["path"], spec, sha256=row["sha256"], cache=default_frame_cache())
        boxes = regions_from_frame_boxes(video, frame_boxes_from_list(per_frame)).boxes
        if not any(boxes):
            continue
        w, h = video.source_size
        clips.append(row["external_id"])
        shares.append(float(attention_share(attention_maps(lm, video, prompt, query="answer"), boxes)))
        areas.append(float(np.mean([sum((b[2] - b[0]) * (b[3] - b[1]) for b in fb) / (w * h) for fb in boxes])))
    return {"attention_clips": clips, "attention_share": shares, "area_share": areas}

"""The demo report's faithfulness columns, measured with the project's masking and attention modules.

- masking drop: ``rbft_core.inspection.masking.run_experiment`` with the demo's per-frame critical-object boxes
  (``meta["boxes"]``): accuracy drop when those boxes are blacked out vs same-size random boxes;
- attention share: ``rbft_core.inspection.attention.attention_maps`` (the answer position's attention on the video)
  -> ``attention_share`` inside the critical-object boxes, beside the boxes' share of the frame area (what
  uniform attention would give).
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
from rbft_core.models.prompts import classification_prompt, preset_from_record
from rbft_core.specs.inspection import MaskSpec

__all__ = ["faithfulness"]


def faithfulness(db_url: Optional[str], dataset: str, run_id: str, *, num_frames: int, k_random: int = 2,
                 seed: int = 0) -> dict[str, Optional[float]]:
    """Masking drops and attention share of one trained run on the test split."""

    cfg = MaskSpec(regions_source="meta", fill="black", k_random=k_random, seed=seed, num_frames=num_frames,
                     bootstrap=200)
    model = run_experiment(db_url, [run_id], dataset, cfg=cfg).models[0]
    share, area = _attention_share(db_url, dataset, run_id, num_frames)
    return {"masking_drop": model["drop_critical"], "random_mask_drop": model["drop_random"],
            "attention_share": share, "box_area_share": area}


def _attention_share(db_url, dataset: str, run_id: str, num_frames: int) -> tuple[float, float]:


    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        prompt = classification_prompt(preset_from_record(ds.preset, role=ds.role, task=ds.task, labels=ds.labels,
                                                          criteria=ds.criteria))
        rows = iq.video_rows(s, ds.id, splits=["test"])
    lm = load_inspect_model(db_url, run_id)
    spec = sample_spec_for(lm.processor, num_frames=num_frames)
    shares, areas = [], []
    for row in rows:
        per_frame = (row.get("meta") or {}).get("boxes")
        if not per_frame:
            continue
        video = sample_frames(row["path"], spec, sha256=row["sha256"], cache=default_frame_cache())
        boxes = regions_from_frame_boxes(video, frame_boxes_from_list(per_frame)).boxes
        shares.append(attention_share(attention_maps(lm, video, prompt, query="answer"), boxes))
        w, h = video.source_size
        areas.append(np.mean([sum((b[2] - b[0]) * (b[3] - b[1]) for b in fb) / (w * h) for fb in boxes]))
    return float(np.mean(shares)), float(np.mean(areas))

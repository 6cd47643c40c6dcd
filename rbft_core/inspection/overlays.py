"""Attention overlays of a run over a dataset's videos (``rbft attention``): one PNG per video and, optionally,
a heatmap mp4. Frames are sampled as the run was trained unless the spec overrides it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from db import inspect_queries as iq
from db import queries
from db.engine import session_scope
from db.models import Video
from rbft_core.data.frame_cache import default_frame_cache
from rbft_core.data.video import sample_frames
from rbft_core.errors import DataError
from rbft_core.inspection.attention import attention_maps
from rbft_core.inspection.heatmaps import save_overlay_png, write_heatmap_video
from rbft_core.inspection.masking import load_inspect_model
from rbft_core.models.loading import sample_spec_for
from rbft_core.models.prompts import classification_prompt, dataset_preset
from rbft_core.specs.inspection import AttentionSpec, layer_range
from rbft_core.task_context import Progress, StopCheck, report, stop_requested
from rbft_core.training.run_sampling import resolve_sampling, sampling_note

__all__ = ["attention_overlays", "video_prompt", "sampled_for_run"]


def video_prompt(db_url: Optional[str], video_id: int) -> tuple[str, list[str]]:
    """The classification prompt and labels of the dataset a video belongs to."""
    with session_scope(db_url) as s:
        ds = s.get(Video, int(video_id)).dataset
        preset = dataset_preset(ds)
    return classification_prompt(preset), list(preset.labels)


def sampled_for_run(lm, row: dict, sampling) -> Any:
    """``row``'s video sampled with ``sampling`` on ``lm``'s patch grid (through the frame cache)."""
    spec = sample_spec_for(lm.processor, num_frames=sampling.num_frames, fps=sampling.fps,
                           max_frames=sampling.max_frames, max_pixels=sampling.max_pixels)
    return sample_frames(row["path"], spec, sha256=row["sha256"], cache=default_frame_cache())


def attention_overlays(db_url: Optional[str], spec: AttentionSpec, *, progress: Optional[Progress] = None,
                       should_stop: Optional[StopCheck] = None) -> list[dict[str, Any]]:
    """Overlay PNGs (and mp4s with ``video_out``) of ``spec.run``'s attention; returns what was written."""
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, spec.dataset)
        rows = iq.video_rows(s, ds.id, splits=[spec.split] if spec.split else None)
    if spec.videos:
        rows = [r for r in rows if r["external_id"] in spec.videos or str(r["video_id"]) in spec.videos]
    if not rows:
        raise DataError(f"no matching videos in dataset {spec.dataset!r} ({spec.split or 'all'}); check --video / "
                        "--split")
    sampling, changed = resolve_sampling(db_url, spec.run, spec)
    lm = load_inspect_model(db_url, spec.run, dtype=spec.dtype, device=spec.device)
    out_dir = Path(spec.out_dir)
    written = []
    for done, row in enumerate(rows, 1):
        if stop_requested(should_stop):
            break
        video = sampled_for_run(lm, row, sampling)
        prompt = spec.prompt or video_prompt(db_url, row["video_id"])[0]
        amap = attention_maps(lm, video, prompt, query=spec.query, layers=layer_range(spec.layers),
                              head_agg=spec.head_agg, relative=spec.relative)
        stem = out_dir / f"{spec.run}-{row['external_id']}"
        title = f"{spec.run} · {row['external_id']} · {sampling_note(sampling, changed)}"
        entry = {"video": row["external_id"], "sampling": sampling.to_dict(), "sampling_override": changed,
                 "png": str(save_overlay_png(amap, stem.with_suffix(".png"), title=title))}
        if spec.video_out:
            entry["mp4"] = str(write_heatmap_video(amap, stem.with_suffix(".mp4"), fps=spec.video_fps))
        written.append(entry)
        report(progress, done, len(rows), row["external_id"])
    return written

"""The Inspect tab's logic: attention overlays for a run and a video, masking one video, starting experiments.

The app process keeps the two most recently used run models loaded (an inspect session flips between a
direct-SFT run and an RB-FT run); files go to ``data/inspect/`` and are served from there.

Loading and running a model here takes the device lock jobs take (``rbft_core.locks.device_lock``): one
model user per device, and a page asks for a few seconds then says the device is busy instead of loading a
7B model next to a training job. While a job waits for the device, the kept models are let go after each use.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from db import inspect_queries as iq
from db import job_queries as jq
from db import queries
from db.engine import session_scope
from rbft_core.data.clips import write_clip
from rbft_core.data.frame_cache import default_frame_cache
from rbft_core.data.video import SampleSpec, sample_frames
from rbft_core.errors import ConfigError, DataError
from rbft_core.inspection.attention import attention_maps, attention_share
from rbft_core.inspection.display import box_to_display, display_scale, display_size
from rbft_core.inspection.heatmaps import save_overlay_frames, save_overlay_png
from rbft_core.inspection.masking import (
    MaskingCollator,
    example_of,
    grid_px,
    load_inspect_model,
    random_controls,
    score_video_conditions,
)
from rbft_core.inspection.overlays import sampled_for_run, video_prompt
from rbft_core.inspection.regions import (
    TimedBox,
    align_regions,
    apply_fill,
    check_box,
    frame_boxes_from_list,
    regions_from_frame_boxes,
    regions_from_timed,
)
from rbft_core.jobs.runner import default_device, start_job
from rbft_core.locks import device_lock
from rbft_core.models.loading import sample_spec_for
from rbft_core.names import file_slug
from rbft_core.settings import data_dir
from rbft_core.specs.inspection import MaskSpec
from rbft_core.specs.sampling import Sampling
from rbft_core.training.run_sampling import resolve_sampling, sampling_note

__all__ = ["list_runs", "list_videos", "frame_for_boxes", "attention_overlay", "mask_one_video", "start_experiment", "experiment_spec",
           "run_sampling_for", "preview_box", "overlay_frames_of",
           "save_drawn_boxes", "drawn_boxes_file", "inspect_dir"]

_OVERLAY_NAME = re.compile(r"attn-[0-9a-f]{12}\.png")
_MODELS: "OrderedDict[str, Any]" = OrderedDict()
_LOCK = threading.Lock()
_KEEP_MODELS = 2
DEVICE_WAIT_S = 5.0  # how long a page waits for the device before saying a job holds it


def inspect_dir() -> Path:
    out = data_dir() / "inspect"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _session(db_url):
    return session_scope(db_url)


def list_runs(db_url: Optional[str], dataset: str) -> list[dict]:
    with _session(db_url) as s:
        return iq.inspectable_runs(s, dataset)


def list_videos(db_url: Optional[str], dataset: str, split: Optional[str] = "test") -> list[dict]:
    with _session(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        return iq.video_rows(s, ds.id, splits=[split] if split else None)


def _video_row(db_url, video_id: int) -> dict:
    with _session(db_url) as s:
        return iq.get_video_row(s, int(video_id))


def _model(db_url, run_id: str):
    with _LOCK:
        if run_id in _MODELS:
            _MODELS.move_to_end(run_id)
            return _MODELS[run_id]
        lm = load_inspect_model(db_url, run_id)
        _MODELS[run_id] = lm
        while len(_MODELS) > _KEEP_MODELS:
            _MODELS.popitem(last=False)
        return lm


@contextmanager
def _on_device(db_url: Optional[str], what: str) -> Iterator[None]:
    """Hold the device (as a job does) while a model is loaded or run; let the models go when a job waits."""
    device = default_device()
    with device_lock(device, wait_s=DEVICE_WAIT_S, what=what):
        yield
    with _session(db_url) as s:
        waiting = any(job.device == device for job in jq.jobs_with_status(s, jq.ACTIVE_STATUSES))
    if waiting:
        with _LOCK:
            _MODELS.clear()
        gc.collect()
        _empty_device_cache()


def _empty_device_cache() -> None:
    try:
        import torch  # heavy: only to hand cached GPU memory back to a waiting job

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def run_sampling_for(db_url: Optional[str], run_id: str, num_frames: Optional[int] = None,
                     max_pixels: Optional[int] = None) -> tuple[Sampling, dict[str, Any]]:
    """The run's own sampling, with the form's frames / max pixels as an override when given (0 or empty: none)."""
    overrides = {"num_frames": int(num_frames) if num_frames else None,
                 "max_pixels": int(max_pixels) if max_pixels else None}
    return resolve_sampling(db_url, run_id, overrides)


def frame_for_boxes(db_url: Optional[str], video_id: int, num_frames: int = 8) -> dict:
    """The middle sampled frame, enlarged by a whole number ``scale`` to at least 480 px wide (each source pixel a
    square; ``rbft_core.inspection.display.to_source`` maps a click back), and the clip's duration."""

    row = _video_row(db_url, video_id)
    sampled = sample_frames(row["path"], SampleSpec(num_frames=num_frames, max_pixels=4096 * 4096, size_factor=2,
                                                    min_pixels=4))
    frame = sampled.frames[len(sampled.frames) // 2]
    scale = display_scale(sampled.source_size)
    image = Image.fromarray(np.ascontiguousarray(frame)).resize(sampled.source_size)
    image = image.resize(display_size(sampled.source_size, scale), Image.Resampling.NEAREST)
    out = inspect_dir() / f"frame-{row['sha256'][:16]}-x{scale}.png"
    image.save(out)
    return {"path": str(out), "source_size": list(sampled.source_size), "scale": scale,
            "display_size": list(image.size), "duration_s": sampled.duration_s,
            "boxes": (row.get("meta") or {}).get("boxes")}


def attention_overlay(db_url: Optional[str], run_id: str, video_id: int, **settings: Any) -> dict:
    """Overlay PNG of ``run_id``'s attention on ``video_id`` (+ the share on the critical object when known).

    Frames are sampled as the run was trained; ``num_frames`` / ``max_pixels`` override that and the override is
    returned (``sampling_note``) to show beside the overlay. Settings: query, layers, head_agg, relative,
    num_frames, max_pixels. Runs under the device lock (a ``JobError`` when a job holds the device)."""
    with _on_device(db_url, "the attention overlay"):
        return _attention_overlay(db_url, run_id, video_id, **settings)


def _attention_overlay(db_url: Optional[str], run_id: str, video_id: int, *, query: str = "answer",
                       layers: Optional[Sequence[int]] = None, head_agg: str = "mean", relative: bool = False,
                       num_frames: Optional[int] = None, max_pixels: Optional[int] = None) -> dict:
    row = _video_row(db_url, video_id)
    sampling, changed = run_sampling_for(db_url, run_id, num_frames, max_pixels)
    lm = _model(db_url, run_id)
    video = sampled_for_run(lm, row, sampling)
    prompt, _ = video_prompt(db_url, row["video_id"])
    with _LOCK:
        amap = attention_maps(lm, video, prompt, query=query, layers=layers, head_agg=head_agg, relative=relative)
    share, boxes = None, None
    if (row.get("meta") or {}).get("boxes"):
        boxes = regions_from_frame_boxes(video, frame_boxes_from_list(row["meta"]["boxes"])).boxes
        share = attention_share(amap, boxes)
    key = hashlib.sha1(json.dumps([run_id, video_id, query, layers, head_agg, relative,
                                   sampling.to_dict()]).encode()).hexdigest()[:12]
    note = sampling_note(sampling, changed)
    title = f"{run_id} · {row['external_id']} · {query} · layers {amap.layers[0]}-{amap.layers[-1]} · {head_agg}" \
            + (" · relative" if relative else "") + (f" · share on object {share:.2f}" if share is not None else "") \
            + f" · {note}"
    png = save_overlay_png(amap, inspect_dir() / f"attn-{key}.png", title=title, boxes=boxes)
    frames = save_overlay_frames(amap, inspect_dir() / f"attn-{key}-frames", boxes=boxes)
    png.with_suffix(".frames.json").write_text(json.dumps(frames))
    return {"png": str(png), "frames": frames, "share": share, "tokens": amap.tokens, "layers": amap.layers,
            "sampling": sampling.to_dict(), "sampling_override": changed, "sampling_note": note}


def overlay_frames_of(overlay_png: Optional[str]) -> list[tuple[str, str]]:
    """The per-frame overlays (path, caption) written with an attention sheet, found by the sheet's file name (the
    page holds a copy of it); [] for anything else."""
    name = Path(str(overlay_png or "")).name
    if not _OVERLAY_NAME.fullmatch(name):
        return []
    sidecar = (inspect_dir() / name).with_suffix(".frames.json")
    if not sidecar.is_file():
        return []
    return [(path, caption) for path, caption in json.loads(sidecar.read_text()) if Path(path).is_file()]


def mask_one_video(db_url: Optional[str], run_ids: Sequence[str], video_id: int, boxes: Sequence[Sequence[float]], *,
                   fill: str = "black", align_to_grid: bool = False, seed: int = 0, num_frames: Optional[int] = None,
                   max_pixels: Optional[int] = None) -> dict:
    """Mask drawn boxes ``[x0, y0, x1, y1, t_start|None, t_end|None]`` (source pixels, seconds) in one video.

    Returns the original and masked clips (mp4) and, per run, the label probabilities before and after
    (and with a same-size random box, as a control), through the evaluation scoring path.
    """

    runs = [r for r in run_ids if r]
    if not runs:
        raise ConfigError("pick at least one run to mask this video with")
    if not boxes:
        raise ConfigError("draw a box first: click two corners on the frame, or type x0, y0, x1, y1")
    with _on_device(db_url, "masking this video"):
        return _mask_one_video(db_url, runs, video_id, boxes, fill=fill, align_to_grid=align_to_grid, seed=seed,
                               num_frames=num_frames, max_pixels=max_pixels)


def _mask_one_video(db_url, runs: list[str], video_id: int, boxes: Sequence[Sequence[float]], *, fill: str,
                    align_to_grid: bool, seed: int, num_frames: Optional[int], max_pixels: Optional[int]) -> dict:
    cfg = MaskSpec(fill=fill, k_random=1, seed=seed, align_to_grid=align_to_grid)
    row = _video_row(db_url, video_id)
    prompt, labels = video_prompt(db_url, row["video_id"])
    timed = [TimedBox(tuple(float(v) for v in b[:4]), _seconds(b, 4), _seconds(b, 5)) for b in boxes]
    out: dict[str, Any] = {"runs": {}, "notices": []}
    for run_id in runs:
        sampling, changed = run_sampling_for(db_url, run_id, num_frames, max_pixels)
        lm = _model(db_url, run_id)
        spec = sample_spec_for(lm.processor, num_frames=sampling.num_frames, fps=sampling.fps,
                               max_frames=sampling.max_frames, max_pixels=sampling.max_pixels)
        collator = MaskingCollator(lm.processor, spec, default_frame_cache())
        video = collator.videos([example_of(row, prompt)])[0]
        regions = regions_from_timed(video, timed)
        cell = grid_px(lm, video.source_size, video.frames.shape[2:0:-1])
        if align_to_grid:
            regions = align_regions(regions, cell)
        with _LOCK:
            scored = score_video_conditions(lm, collator, prompt, labels, row, video, regions, cfg,
                                            random_controls(regions, cfg, row["video_id"], cell if align_to_grid else None))
        out["runs"][run_id] = {"before": scored["original"], "after": scored["critical"], "random": scored["random"][0],
                               "sampling_note": sampling_note(sampling, changed)}
        out["notices"] = regions.notices
        if "original_clip" not in out:
            fps = max(1.0, len(video.timestamps_s) / max(video.duration_s, 1e-3))
            stem = f"{row['sha256'][:12]}-{hashlib.sha1(json.dumps([boxes, fill, align_to_grid]).encode()).hexdigest()[:10]}"
            out["original_clip"] = str(write_clip(video.frames, fps, inspect_dir() / f"orig-{row['sha256'][:12]}.mp4"))
            out["masked_clip"] = str(write_clip(apply_fill(video.frames, regions, fill), fps, inspect_dir() / f"mask-{stem}.mp4"))
    out["truth"], out["labels"] = row["label"], labels
    return out


def _seconds(box: Sequence, index: int) -> Optional[float]:
    value = box[index] if len(box) > index else None
    return None if value in (None, "") else float(value)


def drawn_boxes_file(dataset: str) -> Path:
    """The dataset's drawn boxes; the name is a safe slug (``front.door`` and ``front_door`` never share it).
    A file of an older version (``regions/<dataset>.json``) is renamed to it once."""
    folder = data_dir() / "regions"
    path, legacy = folder / f"{file_slug(dataset)}.json", folder / f"{dataset}.json"
    if not path.exists() and legacy.parent == folder and legacy.is_file():
        legacy.replace(path)
    return path


def save_drawn_boxes(db_url: Optional[str], dataset: str, video_id: int, boxes: Sequence[Sequence[float]]) -> Path:
    """Keep a video's drawn boxes in the dataset's box file (``regions`` format), so experiments can use them."""
    row = _video_row(db_url, video_id)
    path = drawn_boxes_file(dataset)
    data = json.loads(path.read_text()) if path.exists() else {"videos": {}}
    data["videos"][row["external_id"]] = {"regions": [
        {"box": [float(v) for v in b[:4]], "t_start": b[4] if len(b) > 4 else None, "t_end": b[5] if len(b) > 5 else None}
        for b in boxes]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def experiment_spec(db_url: Optional[str], dataset: str, run_ids: Sequence[str], *, regions_source: str = "meta",
                    fill: str = "black", k_random: int = 3, seed: int = 0, align_to_grid: bool = False,
                    num_frames: Optional[int] = None, max_pixels: Optional[int] = None) -> MaskSpec:
    """The masking experiment's spec; each run keeps its own sampling unless frames / max pixels are given."""
    runs = tuple(r for r in run_ids if r)
    if not runs:
        raise ConfigError("pick at least one run for the experiment (e.g. direct SFT and RB-FT)")
    if regions_source == "drawn":
        regions_source = str(drawn_boxes_file(dataset))
        if not Path(regions_source).exists():
            raise DataError(f"no boxes drawn for dataset {dataset!r} yet; draw and save boxes on some test videos")
    list_videos(db_url, dataset)  # a clear error for an unknown dataset before a job starts
    return MaskSpec(dataset=dataset, runs=runs, regions_source=regions_source, fill=fill, k_random=int(k_random),
                    seed=int(seed), align_to_grid=bool(align_to_grid), num_frames=int(num_frames) if num_frames else None,
                    max_pixels=int(max_pixels) if max_pixels else None)


def start_experiment(db_url: Optional[str], dataset: str, run_ids: Sequence[str], **settings: Any) -> int:
    """Start the masking experiment (a ``MaskSpec``) as a background job; returns the job id."""
    return start_job(db_url, experiment_spec(db_url, dataset, run_ids, **settings))


def preview_box(frame_path: str, box: Sequence[float], scale: int = 1) -> str:
    """The drawing frame (shown ``scale`` times its source size) with ``box`` (source pixels) outlined, as a new
    PNG next to it."""

    image = Image.open(frame_path).convert("RGB")
    checked, _ = check_box(box, (image.size[0] // scale, image.size[1] // scale))
    x0, y0, x1, y1 = box_to_display(checked, scale)
    ImageDraw.Draw(image).rectangle([x0, y0, x1 - 1, y1 - 1], outline=(255, 40, 40), width=2)
    out = Path(frame_path).with_name(Path(frame_path).stem.split("+")[0] + "+box-" +
                                     hashlib.sha1(json.dumps([x0, y0, x1, y1]).encode()).hexdigest()[:8] + ".png")
    image.save(out)
    return str(out)

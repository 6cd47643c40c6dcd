"""Regions to mask, per sampled frame: drawn boxes, box files, motion, attention top-k; random controls; fills.

All boxes are (x0, y0, x1, y1) in the *source* video's pixels (what a person draws on a frame, what the demo
manifest and box files hold); a ``Regions`` holds one list of boxes per sampled frame. Masks are applied to the
sampled (resized) frames, so the masked frames go through the same processor path as evaluation.

Box files (``load_box_file``), keyed by the video's external id or its file name:

- JSON: ``{"videos": {"clip_0001": {"boxes": [[x0, y0, x1, y1] | null, ...]}}}`` (one box per source frame, the
  demo world's manifest format), or ``{"videos": {"clip_0001": {"regions": [{"box": [...], "t_start": 0.0,
  "t_end": 2.5}]}}}`` (boxes over a time range; no times = the whole video);
- JSONL: the demo world's ``manifest.jsonl`` itself (rows with ``id`` and per-frame ``boxes``);
- CSV: ``video,frame,x0,y0,x1,y1`` (source frame index) or ``video,t_start,t_end,x0,y0,x1,y1``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

import numpy as np
from PIL import Image, ImageFilter

from rbft_core.errors import ConfigError, DataError

__all__ = ["Box", "Regions", "TimedBox", "check_box", "regions_from_timed", "regions_from_frame_boxes",
           "load_box_file", "motion_regions", "attention_regions", "random_control", "align_regions", "apply_fill",
           "FILLS"]

Box = tuple[float, float, float, float]
Fill = Literal["black", "mean", "blur"]
FILLS = ("black", "mean", "blur")


@dataclass
class Regions:
    """Boxes (source pixels) per sampled frame, and notices about anything repaired on the way."""

    boxes: list[list[Box]]
    source_size: tuple[int, int]
    notices: list[str] = field(default_factory=list)

    def area(self) -> float:
        return sum((b[2] - b[0]) * (b[3] - b[1]) for frame in self.boxes for b in frame)

    def to_json(self) -> dict:
        return {"boxes": [[list(b) for b in f] for f in self.boxes], "source_size": list(self.source_size),
                "notices": self.notices}


@dataclass(frozen=True)
class TimedBox:
    """A box over a time range of the video (None: from the start / to the end)."""

    box: Box
    t_start: Optional[float] = None
    t_end: Optional[float] = None


def check_box(box: Sequence[float], size: tuple[int, int], what: str = "box") -> tuple[Box, Optional[str]]:
    """Clip a box to the frame (a notice says so); refuse zero-area and wholly outside boxes."""
    if len(box) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
        raise DataError(f"{what} must be four numbers x0, y0, x1, y1, got {list(box)}")
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        raise DataError(f"{what} {list(box)} has zero area; drag two different corners (x0 != x1 and y0 != y1)")
    width, height = size
    clipped = (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise DataError(f"{what} {list(box)} lies wholly outside the {width}x{height} frame; draw it on the frame")
    if clipped != (x0, y0, x1, y1):
        return clipped, f"{what} {[round(v, 1) for v in box]} reached outside the {width}x{height} frame; clipped to " \
                        f"{[round(v, 1) for v in clipped]}"
    return clipped, None


def regions_from_timed(video, timed: Sequence[TimedBox]) -> Regions:
    """Per-frame boxes from boxes over time ranges; ranges past the video's end are clipped (with a notice)."""
    notices: list[str] = []
    boxes: list[list[Box]] = [[] for _ in range(video.num_frames)]
    duration = float(video.duration_s or (video.timestamps_s[-1] if video.timestamps_s else 0.0))
    for n, item in enumerate(timed):
        box, note = check_box(item.box, video.source_size, f"box {n + 1}")
        notices += [note] if note else []
        start = 0.0 if item.t_start is None else float(item.t_start)
        end = duration if item.t_end is None else float(item.t_end)
        if end < start:
            raise DataError(f"box {n + 1}: time range {start}-{end} s ends before it starts; swap the two times")
        if start >= duration:
            raise DataError(f"box {n + 1}: time range starts at {start} s, after the video's end ({duration:.2f} s); "
                            "pick a start within the video")
        if end > duration:
            notices.append(f"box {n + 1}: time range {start}-{end} s went past the video's end; clipped to "
                           f"{start}-{duration:.2f} s")
            end = duration
        for f, t in enumerate(video.timestamps_s):
            if start <= t <= end:
                boxes[f].append(box)
    return Regions(boxes=boxes, source_size=tuple(video.source_size), notices=notices)


def regions_from_frame_boxes(video, frame_boxes: dict[int, list]) -> Regions:
    """Per-frame boxes keyed by source frame index; a sampled frame takes the nearest annotated frame's boxes."""
    notices: list[str] = []
    if not frame_boxes:
        return Regions([[] for _ in range(video.num_frames)], tuple(video.source_size), ["no boxes for this video"])
    annotated = sorted(frame_boxes)
    boxes = []
    for f, index in enumerate(video.frame_indices):
        nearest = min(annotated, key=lambda a: abs(a - index))
        frame = []
        for box in frame_boxes[nearest] or []:
            checked, note = check_box(box, video.source_size, f"box of frame {nearest}")
            frame.append(checked)
            if note and note not in notices:
                notices.append(note)
        boxes.append(frame)
    return Regions(boxes=boxes, source_size=tuple(video.source_size), notices=notices)


def frame_boxes_from_list(per_frame: list) -> dict[int, list]:
    """[box | [box, ...] | None per source frame] -> {frame: [boxes]}."""
    out = {}
    for i, item in enumerate(per_frame):
        if item is None or item == []:
            out[i] = []
        elif isinstance(item[0], (int, float)):
            out[i] = [item]
        else:
            out[i] = list(item)
    return out


def load_box_file(path: str | os.PathLike) -> dict[str, Any]:
    """{video key: {frame: [boxes]} or [TimedBox, ...]} from a JSON / JSONL / CSV box file (formats above)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"box file {path} does not exist; give a JSON, JSONL or CSV box file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return _boxes_from_csv(path)
        if suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            return {str(r.get("id") or Path(r["path"]).stem): frame_boxes_from_list(r["boxes"]) for r in rows
                    if r.get("boxes") is not None}
        data = json.loads(path.read_text())
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"box file {path} is not in a known format ({exc.__class__.__name__}: {exc}); "
                        "see rbft_core/inspection/regions.py for the JSON, JSONL and CSV layouts") from None
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict):
        raise DataError(f"box file {path} needs a top-level \"videos\" object keyed by video id")
    out: dict[str, Any] = {}
    for key, entry in videos.items():
        if "boxes" in entry:
            out[str(key)] = frame_boxes_from_list(entry["boxes"])
        else:
            out[str(key)] = [TimedBox(tuple(r["box"]), r.get("t_start"), r.get("t_end")) for r in entry.get("regions", [])]
    return out


def _boxes_from_csv(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or [])
        if not {"video", "x0", "y0", "x1", "y1"} <= fields or not ({"frame"} <= fields or {"t_start", "t_end"} <= fields):
            raise DataError(f"box file {path} needs columns video,frame,x0,y0,x1,y1 or video,t_start,t_end,x0,y0,x1,y1")
        for row in reader:
            box = tuple(float(row[k]) for k in ("x0", "y0", "x1", "y1"))
            if row.get("frame") not in (None, ""):
                out.setdefault(row["video"], {}).setdefault(int(row["frame"]), []).append(box)
            else:
                t0, t1 = row.get("t_start") or None, row.get("t_end") or None
                out.setdefault(row["video"], []).append(TimedBox(box, float(t0) if t0 else None, float(t1) if t1 else None))
    return out


def motion_regions(video, *, threshold: float = 40.0, min_share: float = 0.002) -> Regions:
    """Frame differencing: per frame, the bounding box of pixels that differ from the clip's median frame."""
    frames = np.asarray(video.frames, dtype=np.float32)
    background = np.median(frames, axis=0)
    _, height, width, _ = frames.shape
    sx, sy = video.source_size[0] / width, video.source_size[1] / height
    boxes = []
    for frame in frames:
        moving = np.abs(frame - background).mean(axis=-1) > threshold
        if moving.mean() < min_share:
            boxes.append([])
            continue
        ys, xs = np.nonzero(moving)
        boxes.append([(xs.min() * sx, ys.min() * sy, (xs.max() + 1) * sx, (ys.max() + 1) * sy)])
    notices = [] if any(boxes) else ["no motion found (nothing moves against the clip's median frame)"]
    return Regions(boxes=boxes, source_size=tuple(video.source_size), notices=notices)


def attention_regions(amap, k: int) -> Regions:
    """The k most-attended cells of an attention map as boxes on the frames of their temporal cell."""
    if k < 1:
        raise ConfigError(f"attention top-k must be >= 1, got {k}")
    _, gh, gw = amap.grid.shape
    cw, ch = amap.source_size[0] / gw, amap.source_size[1] / gh
    boxes: list[list[Box]] = [[] for _ in range(amap.frames.shape[0])]
    for t, h, w in amap.top_cells(k):
        for f in range(len(boxes)):
            if amap.cell_of_frame(f) == t:
                boxes[f].append((w * cw, h * ch, (w + 1) * cw, (h + 1) * ch))
    return Regions(boxes=boxes, source_size=tuple(amap.source_size))


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def random_control(regions: Regions, rng: np.random.Generator, *, grid_px: Optional[float] = None,
                   tries: int = 500) -> Regions:
    """One box per region box, same width and height (so area and aspect ratio), placed at random in the frame
    without overlapping any region box of that frame (a notice says when a box cannot avoid overlap)."""
    width, height = regions.source_size
    out, notices = [], []
    for f, frame in enumerate(regions.boxes):
        placed: list[Box] = []
        for box in frame:
            bw, bh = box[2] - box[0], box[3] - box[1]
            best, best_overlap = None, math.inf
            for _ in range(tries):
                x0, y0 = rng.uniform(0, max(0.0, width - bw)), rng.uniform(0, max(0.0, height - bh))
                if grid_px:
                    x0 = min(round(x0 / grid_px) * grid_px, max(0.0, width - bw))
                    y0 = min(round(y0 / grid_px) * grid_px, max(0.0, height - bh))
                candidate = (x0, y0, x0 + bw, y0 + bh)
                overlap = sum(_overlaps(candidate, other) for other in frame)
                if overlap < best_overlap:
                    best, best_overlap = candidate, overlap
                if overlap == 0:
                    break
            if best_overlap:
                notices.append(f"frame {f}: a random box of {bw:.0f}x{bh:.0f} px cannot avoid the region; it overlaps it")
            placed.append(best)
        out.append(placed)
    return Regions(boxes=out, source_size=regions.source_size, notices=notices)


def align_regions(regions: Regions, grid_px: float) -> Regions:
    """Grow every box outwards to the model's token grid (``grid_px`` source pixels per cell)."""
    width, height = regions.source_size
    snap = lambda b: (math.floor(b[0] / grid_px) * grid_px, math.floor(b[1] / grid_px) * grid_px,  # noqa: E731
                      min(float(width), math.ceil(b[2] / grid_px) * grid_px),
                      min(float(height), math.ceil(b[3] / grid_px) * grid_px))
    return Regions([[snap(b) for b in f] for f in regions.boxes], regions.source_size, list(regions.notices))


def apply_fill(frames: np.ndarray, regions: Regions, fill: Fill = "black") -> np.ndarray:
    """A masked copy of the sampled frames [T, H, W, 3]: region boxes filled black, with the frame's mean
    colour, or blurred (Gaussian, radius a quarter of the box's longer side)."""
    if fill not in FILLS:
        raise ConfigError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")
    if len(regions.boxes) != len(frames):
        raise DataError(f"{len(regions.boxes)} box lists for {len(frames)} frames; regions must come from this video")
    out = np.array(frames, copy=True)
    _, height, width, _ = out.shape
    sx, sy = width / regions.source_size[0], height / regions.source_size[1]
    for f, frame_boxes in enumerate(regions.boxes):
        mean = frames[f].reshape(-1, frames.shape[-1]).mean(axis=0)
        for x0, y0, x1, y1 in frame_boxes:
            xa, xb = int(np.floor(x0 * sx)), int(np.ceil(x1 * sx))
            ya, yb = int(np.floor(y0 * sy)), int(np.ceil(y1 * sy))
            if xb <= xa or yb <= ya:
                continue
            if fill == "black":
                out[f, ya:yb, xa:xb] = 0
            elif fill == "mean":
                out[f, ya:yb, xa:xb] = mean.astype(out.dtype)
            else:
                out[f, ya:yb, xa:xb] = _blur(frames[f], xa, ya, xb, yb)
    return out


def _blur(frame: np.ndarray, xa: int, ya: int, xb: int, yb: int) -> np.ndarray:
    radius = max(2.0, max(xb - xa, yb - ya) / 4)
    blurred = Image.fromarray(np.ascontiguousarray(frame[..., :3])).filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(blurred)[ya:yb, xa:xb]

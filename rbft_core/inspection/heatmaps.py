"""Drawing attention maps: overlays on the sampled frames (matplotlib), a PNG sheet, one PNG per frame to enlarge,
a heatmap video (moviepy).

One colour scale across all frames of a map (0 .. the map's largest cell), so a frame that looks hotter did get
more attention. Pictures for people are enlarged smoothly (``smooth_overlays``: the frame bicubic, the cell grid
bilinear, at least 480 px wide); the numbers (``AttentionMap.frame_maps``, the share on a box) keep the cells
as cells. Matplotlib runs on the Agg backend (no display needed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from rbft_core.data.clips import write_clip
from rbft_core.inspection.attention import AttentionMap
from rbft_core.inspection.display import MIN_DISPLAY_WIDTH_PX, display_scale

__all__ = ["overlay_frames", "smooth_overlays", "save_overlay_png", "save_overlay_frames", "write_heatmap_video",
           "draw_boxes"]


def _colormap(name: str):
    import matplotlib  # matplotlib loads only when a figure is drawn

    matplotlib.use("Agg", force=False)
    return matplotlib.colormaps[name]


def overlay_frames(amap: AttentionMap, *, alpha: float = 0.5, cmap: str = "jet", vmax: Optional[float] = None) -> np.ndarray:
    """[T, H, W, 3] uint8: each sampled frame blended with its heatmap (shared scale 0..vmax)."""
    maps = amap.frame_maps()
    top = float(vmax if vmax is not None else amap.grid.max())
    scaled = np.clip(maps / top, 0.0, 1.0) if top > 0 else np.zeros_like(maps)
    colours = _colormap(cmap)(scaled)[..., :3] * 255.0
    frames = amap.frames[..., :3].astype(np.float64)
    return np.clip((1 - alpha) * frames + alpha * colours, 0, 255).astype(np.uint8)


def smooth_overlays(amap: AttentionMap, *, min_width_px: int = MIN_DISPLAY_WIDTH_PX, alpha: float = 0.5,
                    cmap: str = "jet", vmax: Optional[float] = None) -> np.ndarray:
    """[T, H', W', 3] uint8 at least ``min_width_px`` wide: each frame enlarged (bicubic) and blended with its cell
    grid enlarged bilinearly (no blocks), on the shared scale 0..vmax."""
    _, height, width, _ = amap.frames.shape
    scale = display_scale((width, height), min_width_px)
    size = (width * scale, height * scale)
    top = float(vmax if vmax is not None else amap.grid.max())
    colours = _colormap(cmap)
    out = []
    for f in range(amap.frames.shape[0]):
        frame = np.asarray(Image.fromarray(np.ascontiguousarray(amap.frames[f, ..., :3])).resize(
            size, Image.Resampling.BICUBIC), dtype=np.float64)
        grid = np.ascontiguousarray(amap.grid[amap.cell_of_frame(f)], dtype=np.float32)
        heat = np.asarray(Image.fromarray(grid, mode="F").resize(size, Image.Resampling.BILINEAR))
        scaled = np.clip(heat / top, 0.0, 1.0) if top > 0 else np.zeros_like(heat)
        out.append((1 - alpha) * frame + alpha * colours(scaled)[..., :3] * 255.0)
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


def draw_boxes(frames: np.ndarray, boxes: Sequence[Optional[Sequence[Sequence[float]]]], source_size: tuple[int, int],
               colour=(255, 255, 255), width_px: int = 1) -> np.ndarray:
    """Outline per-frame boxes (source-video pixels) on a copy of ``frames``."""
    out = np.array(frames, copy=True)
    _, height, width, _ = out.shape
    sx, sy = width / source_size[0], height / source_size[1]
    for f, frame_boxes in enumerate(boxes[: len(out)]):
        for x0, y0, x1, y1 in frame_boxes or []:
            xa, xb = int(np.clip(x0 * sx, 0, width - 1)), int(np.clip(x1 * sx - 1, 0, width - 1))
            ya, yb = int(np.clip(y0 * sy, 0, height - 1)), int(np.clip(y1 * sy - 1, 0, height - 1))
            for d in range(width_px):
                out[f, ya:yb + 1, min(xa + d, xb)] = colour
                out[f, ya:yb + 1, max(xb - d, xa)] = colour
                out[f, min(ya + d, yb), xa:xb + 1] = colour
                out[f, max(yb - d, ya), xa:xb + 1] = colour
    return out


def save_overlay_png(amap: AttentionMap, out_path: str | os.PathLike, *, title: str = "", alpha: float = 0.5,
                     columns: int = 4, boxes=None, vmax: Optional[float] = None) -> Path:
    """A sheet of the overlaid frames with their timestamps and one shared colour bar."""
    import matplotlib  # matplotlib loads only when a figure is drawn

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # matplotlib loads only when a figure is drawn
    from matplotlib.cm import (
        ScalarMappable,  # matplotlib loads only when a figure is drawn
    )
    from matplotlib.colors import (
        Normalize,  # matplotlib loads only when a figure is drawn
    )

    top = float(vmax if vmax is not None else amap.grid.max())
    frames = smooth_overlays(amap, min_width_px=240, alpha=alpha, vmax=top)
    if boxes is not None:
        frames = draw_boxes(frames, boxes, amap.source_size, width_px=2)
    count = frames.shape[0]
    columns = max(1, min(columns, count))
    rows = (count + columns - 1) // columns
    aspect = frames.shape[1] / frames.shape[2]
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns + 0.6, 2.4 * rows * aspect + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < count:
            ax.imshow(frames[i], interpolation="bilinear")
            ax.set_title(f"{amap.timestamps_s[i]:.2f} s", fontsize=8)
    fig.colorbar(ScalarMappable(Normalize(0, top), cmap="jet"), ax=axes.ravel().tolist(), shrink=0.8,
                 label="share of video attention")
    if title:
        fig.suptitle(title, fontsize=10)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


def save_overlay_frames(amap: AttentionMap, out_dir: str | os.PathLike, *, alpha: float = 0.5, boxes=None,
                        vmax: Optional[float] = None) -> list[tuple[str, str]]:
    """One smooth overlay PNG per sampled frame (>= 480 px wide) in ``out_dir``, to enlarge one at a time;
    returns (path, caption "frame i · t s") pairs."""
    frames = smooth_overlays(amap, alpha=alpha, vmax=vmax)
    if boxes is not None:
        frames = draw_boxes(frames, boxes, amap.source_size, width_px=3)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, frame in enumerate(frames):
        path = out_dir / f"frame-{i:02d}.png"
        Image.fromarray(frame).save(path)
        written.append((str(path), f"frame {i + 1} · {amap.timestamps_s[i]:.2f} s"))
    return written


def write_heatmap_video(amap: AttentionMap, out_path: str | os.PathLike, *, fps: float = 2.0, alpha: float = 0.5) -> Path:
    """The overlaid frames as a browser-playable mp4 (``clips.write_clip``)."""

    return write_clip(overlay_frames(amap, alpha=alpha), fps, out_path)

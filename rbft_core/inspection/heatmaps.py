"""Drawing attention maps: overlays on the sampled frames (matplotlib), a PNG sheet, a heatmap video (moviepy).

One colour scale across all frames of a map (0 .. the map's largest cell), so a frame that looks hotter did get
more attention. Matplotlib runs on the Agg backend (no display needed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from rbft_core.data.clips import write_clip
from rbft_core.inspection.attention import AttentionMap

__all__ = ["overlay_frames", "save_overlay_png", "write_heatmap_video", "draw_boxes"]


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
    frames = overlay_frames(amap, alpha=alpha, vmax=top)
    if boxes is not None:
        frames = draw_boxes(frames, boxes, amap.source_size)
    count = frames.shape[0]
    columns = max(1, min(columns, count))
    rows = (count + columns - 1) // columns
    aspect = frames.shape[1] / frames.shape[2]
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns + 0.6, 2.4 * rows * aspect + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < count:
            ax.imshow(frames[i])
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


def write_heatmap_video(amap: AttentionMap, out_path: str | os.PathLike, *, fps: float = 2.0, alpha: float = 0.5) -> Path:
    """The overlaid frames as a browser-playable mp4 (``clips.write_clip``)."""

    return write_clip(overlay_frames(amap, alpha=alpha), fps, out_path)

"""Showing small frames large enough to work on: the integer scale a frame is shown at, and the mapping of a
click on the shown image back to source-video pixels (the unit boxes are stored and masked in).

The demo clips are about 80 px wide; a frame is shown at least ``MIN_DISPLAY_WIDTH_PX`` wide, enlarged by a whole
number so every source pixel is the same square of screen pixels and a click maps back exactly.
"""

from __future__ import annotations

import math
from typing import Sequence

__all__ = ["MIN_DISPLAY_WIDTH_PX", "display_scale", "display_size", "to_source", "box_to_display"]

MIN_DISPLAY_WIDTH_PX = 480


def display_scale(source_size: Sequence[int], min_width_px: int = MIN_DISPLAY_WIDTH_PX) -> int:
    """The whole-number enlargement that shows a ``(width, height)`` frame at least ``min_width_px`` wide (1 when
    it already is)."""
    width = int(source_size[0])
    if width <= 0:
        raise ValueError(f"frame width must be > 0, got {width}")
    return max(1, math.ceil(min_width_px / width))


def display_size(source_size: Sequence[int], scale: int) -> tuple[int, int]:
    return int(source_size[0]) * scale, int(source_size[1]) * scale


def to_source(point: Sequence[float], scale: int, source_size: Sequence[int]) -> tuple[float, float]:
    """A pixel clicked on the shown image -> source pixels (one decimal), inside the frame."""
    x = min(max(float(point[0]) / scale, 0.0), float(source_size[0]))
    y = min(max(float(point[1]) / scale, 0.0), float(source_size[1]))
    return round(x, 1), round(y, 1)


def box_to_display(box: Sequence[float], scale: int) -> tuple[float, float, float, float]:
    """A box in source pixels -> the shown image's pixels."""
    x0, y0, x1, y1 = (float(v) * scale for v in box[:4])
    return x0, y0, x1, y1

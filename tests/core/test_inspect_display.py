"""Inspect's display geometry as pure functions: the whole-number enlargement to >= 480 px, the click -> source
pixel mapping, and smooth (bilinear, not blocky) attention overlays."""

from __future__ import annotations

import numpy as np
import pytest

from rbft_core.inspection.attention import AttentionMap
from rbft_core.inspection.display import (
    MIN_DISPLAY_WIDTH_PX,
    box_to_display,
    display_scale,
    display_size,
    to_source,
)
from rbft_core.inspection.heatmaps import save_overlay_frames, smooth_overlays


@pytest.mark.parametrize("source, scale", [((80, 60), 6), ((32, 32), 15), ((112, 84), 5), ((480, 270), 1),
                                           ((1920, 1080), 1), ((479, 10), 2)])
def test_frames_are_shown_at_least_480_px_wide_by_a_whole_number(source, scale):
    assert display_scale(source) == scale
    width, height = display_size(source, scale)
    assert width >= MIN_DISPLAY_WIDTH_PX and (width, height) == (source[0] * scale, source[1] * scale)


def test_a_click_maps_back_to_the_source_pixel_it_shows():
    source, scale = (80, 60), display_scale((80, 60))
    for sx in range(80):
        for sy in (0, 31, 59):
            for offset in (0, scale - 1):  # any shown pixel of a source pixel's square
                x, y = to_source((sx * scale + offset, sy * scale + offset), scale, source)
                assert int(x) == sx and int(y) == sy
    assert to_source((0, 0), scale, source) == (0.0, 0.0)
    assert to_source((240, 180), scale, source) == (40.0, 30.0)  # the centre
    assert to_source((9999, -5), scale, source) == (80.0, 0.0)  # outside: clamped to the frame
    assert box_to_display((10, 5, 20, 15), scale) == (60.0, 30.0, 120.0, 90.0)


def _amap() -> AttentionMap:
    grid = np.zeros((1, 2, 2))
    grid[0, 0, 0] = 1.0  # all the attention in the top-left cell
    frames = np.full((2, 8, 8, 3), 128, np.uint8)
    return AttentionMap(grid=grid, frames=frames, timestamps_s=[0.0, 0.5], temporal_patch_size=2,
                        source_size=(80, 80))


def test_overlays_are_enlarged_smoothly_not_in_blocks():
    amap = _amap()
    smooth = smooth_overlays(amap)
    assert smooth.shape == (2, 480, 480, 3)
    row = smooth[0, 100, :, 0].astype(int)  # red channel across the hot cell's rows: a gradient, not two blocks
    assert len(np.unique(row)) > 20
    assert np.abs(np.diff(row)).max() <= 8  # no jump at the cell border
    nearest = np.kron(amap.frame_maps()[0], np.ones((60, 60)))[100]
    assert len(np.unique(nearest)) == 2  # what the blocky version would have shown


def test_every_frame_gets_its_own_enlargeable_png(tmp_path):
    from PIL import Image

    written = save_overlay_frames(_amap(), tmp_path / "frames")
    assert [caption for _path, caption in written] == ["frame 1 · 0.00 s", "frame 2 · 0.50 s"]
    assert all(Image.open(path).size == (480, 480) for path, _caption in written)

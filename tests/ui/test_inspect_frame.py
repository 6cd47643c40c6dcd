"""Inspect's drawing frame through the wired events (no server, no model): a 32 px clip is shown >= 480 px wide,
and two clicks on the shown image become a box in source pixels, outlined on the shown frame."""

from __future__ import annotations

import gradio as gr
import pytest
from PIL import Image

from tests.export_world import build_world
from ui import inspect_tab


@pytest.fixture
def wired(db_url, tmp_path, data_dir):
    world = build_world(db_url, tmp_path)  # 32x32 px clips
    with gr.Blocks() as demo:
        tab = inspect_tab.build_inspect_tab()
        tab.attach(demo, db_url)
    events = {fn.api_name: fn for fn in demo.fns.values()}
    return world, tab, events


def _click(events, frame_state, corner, x, y):
    evt = gr.SelectData(None, {"index": [x, y], "value": None, "selected": True})
    return events["on_click"].fn(None, evt, frame_state, corner)


def test_frame_is_shown_at_least_480_px_wide_and_clicks_map_to_source_pixels(wired):
    world, tab, events = wired
    frame, state, note = events["inspect_video"].fn(None, world.ids["normal/v0.mp4"])
    path = frame if isinstance(frame, str) else frame.value["path"]
    assert Image.open(path).size == (480, 480)  # 32 px enlarged 15x
    assert state["size"] == [32, 32] and state["scale"] == 15 and "shown 15x" in note

    corner, x0, y0, *_rest = _click(events, state, None, 75, 150)  # shown pixels
    assert corner == [5.0, 10.0] and (x0, y0) == (5.0, 10.0)
    out = _click(events, state, corner, 300, 465)
    corner, x0, y0, x1, y1, shown, note = out
    assert corner is None and (x0, y0, x1, y1) == (5.0, 10.0, 20.0, 31.0)  # source pixels
    assert note == "box [5, 10, 20, 31]"
    preview = Image.open(shown if isinstance(shown, str) else shown.value["path"]).convert("RGB")
    assert preview.size == (480, 480) and preview.getpixel((75, 300)) == (255, 40, 40)  # outline on the shown frame

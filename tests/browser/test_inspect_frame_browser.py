"""Inspect's drawing frame in a real browser: a 32 px clip is shown at least 480 px wide on the page, and two clicks
land in the box fields as the source pixels they point at."""

from __future__ import annotations

import pytest

from tests.export_world import build_world

pytestmark = pytest.mark.browser


def test_inspect_frame_is_at_least_480_px_wide_and_clicks_map_to_source_pixels(start_app, page, db_url, data_dir,
                                                                                tmp_path):
    build_world(db_url, tmp_path)  # 32x32 px clips
    page.goto(start_app(db_url, data_dir))
    page.get_by_role("tab", name="Inspect").click()
    page.wait_for_function("() => { const i = document.querySelector('#inspect-frame img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=60_000)
    image = page.locator("#inspect-frame img")
    box = image.bounding_box()
    assert image.evaluate("i => i.naturalWidth") == 480
    assert box["width"] >= 480, box  # as wide on the screen, not shrunk into a column

    def click_source(x: float, y: float) -> None:  # the shown position of source pixel (x, y)
        image.click(position={"x": box["width"] * x / 32, "y": box["height"] * y / 32})

    click_source(5.5, 10.5)
    page.wait_for_function("() => (document.querySelector('#inspect-box-note')?.innerText || '')"
                           ".includes('first corner')")
    click_source(20.5, 30.5)
    page.wait_for_function("() => (document.querySelector('#inspect-box-note')?.innerText || '').startsWith('box [')")
    got = [float(page.locator(f"#inspect-{k} input").input_value()) for k in ("x0", "y0", "x1", "y1")]
    for value, expected in zip(got, (5.5, 10.5, 20.5, 30.5)):
        assert abs(value - expected) <= 0.2, (got, box)

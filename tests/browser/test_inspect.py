"""The Inspect tab in a real browser: overlays of two runs, a box drawn by two clicks, masked vs original, and
the test-split experiment as a job; a screenshot goes to test-artifacts/inspect-tab.png."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FAST = dict(max_steps=2, batch_size=2, lora_rank=4, num_frames=4, max_pixels=3136, lr=5e-3)


@pytest.fixture
def two_trained_runs(world_dataset, tiny_model_dir):
    """Direct SFT and RB-FT (Stage I -> Stage II), a few steps each, on the 12-clip demo world."""
    from db.engine import dispose_engines
    from rbft_core.specs.training import TrainSpec
    from rbft_core.training.train import train_stage

    name, url = world_dataset
    model = str(tiny_model_dir)
    sft = train_stage(url, TrainSpec(dataset=name, stage=2, model=model, **FAST))
    s1 = train_stage(url, TrainSpec(dataset=name, stage=1, model=model, **FAST))
    rbft = train_stage(url, TrainSpec(dataset=name, stage=2, model=model, init_from=s1.run_id, **FAST))
    dispose_engines()
    return name, url, sft.run_id, rbft.run_id


def _wait_img(page, selector: str, timeout_ms: int = 120_000) -> None:
    page.wait_for_function("s => { const i = document.querySelector(s + ' img'); return i && i.complete && i.naturalWidth > 0; }",
                           arg=selector, timeout=timeout_ms)


def test_inspect_tab_overlays_masking_and_experiment(two_trained_runs, start_app, page, data_dir):
    name, url, sft, rbft = two_trained_runs
    page.goto(start_app(url, data_dir))
    page.get_by_role("tab", name="Inspect").click()
    page.wait_for_function("() => (document.querySelector('#inspect-run-b input')?.value || '').includes('stage2')",
                           timeout=60_000)
    assert "direct_sft" in page.locator("#inspect-run-a input").input_value()

    page.click("#inspect-show")
    _wait_img(page, "#inspect-overlay-a")
    _wait_img(page, "#inspect-overlay-b")
    assert "critical object" in page.inner_text("#inspect-attn-note")
    # each frame of an overlay, enlarged smoothly, opens large from the gallery under it
    page.wait_for_function("() => document.querySelectorAll('#inspect-frames-a img').length >= 2", timeout=30_000)
    thumbs = page.locator("#inspect-frames-a img")
    # the image file loads after the element appears: wait for it, then check its size
    page.wait_for_function("() => { const i = document.querySelector('#inspect-frames-a img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=30_000)
    assert thumbs.first.evaluate("i => i.naturalWidth") >= 480
    thumbs.first.click()
    page.wait_for_function("() => { const p = document.querySelector('#inspect-frames-a .preview img');"
                           " return p && p.getBoundingClientRect().width > 200; }", timeout=15_000)

    _wait_img(page, "#inspect-frame")
    image = page.locator("#inspect-frame img")
    box = image.bounding_box()
    image.click(position={"x": box["width"] * 0.2, "y": box["height"] * 0.3})
    page.wait_for_function("() => (document.querySelector('#inspect-box-note')?.innerText || '').includes('first corner')")
    image.click(position={"x": box["width"] * 0.6, "y": box["height"] * 0.8})
    page.wait_for_function("() => (document.querySelector('#inspect-box-note')?.innerText || '').startsWith('box [')")
    x0 = float(page.locator("#inspect-x0 input").input_value())
    x1 = float(page.locator("#inspect-x1 input").input_value())
    assert 0 <= x0 < x1  # source pixels of the two clicks

    page.fill("#inspect-t1 textarea", "1.0")  # mask from the start to 1.0 s (a time range)
    page.click("#inspect-mask")
    page.wait_for_selector("#inspect-mask-table", timeout=120_000)
    table = page.inner_text("#inspect-mask-table")
    assert sft in table and rbft in table and "random box" in table
    page.wait_for_selector("#inspect-original video", timeout=30_000)
    page.wait_for_selector("#inspect-masked video", timeout=30_000)

    page.click("#inspect-start")
    page.wait_for_function("() => (document.querySelector('#inspect-job')?.innerText || '').includes('succeeded')",
                           timeout=240_000)
    page.wait_for_function("() => ['direct SFT', 'RB-FT'].every(t => (document.querySelector('#inspect-table')?.innerText || '')"
                           ".includes(t))", timeout=30_000)
    _wait_img(page, "#inspect-chart", 30_000)
    assert "direct SFT" in page.inner_text("#inspect-table") and "RB-FT" in page.inner_text("#inspect-table")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "inspect-tab.png"), full_page=True)

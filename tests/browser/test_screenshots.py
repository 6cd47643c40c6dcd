"""The README's screenshots: each tab on a small demo world (12 rendered clips, scene-graph rationales, a few
reviews, direct SFT and RB-FT trained a few steps with a tiny model and evaluated), written to docs/images/.

They run only with RBFT_SCREENSHOTS=1 (``make screenshots``), so the normal suite never rewrites committed files.
Each picture is reduced to a 128-colour PNG at most 1100 px wide and checked to stay under 300 KB.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(os.environ.get("RBFT_SCREENSHOTS") != "1",
                                 reason="writes docs/images/*.png; run with RBFT_SCREENSHOTS=1 (make screenshots)")]

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
MAX_BYTES = 300 * 1024
FAST = dict(max_steps=4, batch_size=2, lora_rank=4, num_frames=4, max_pixels=3136, lr=5e-3)


def _shot(page, name: str, *, full_page: bool = True, max_height_px: int = 2200) -> Path:
    """Screenshot -> at most 1100 px wide, 128 colours, < 300 KB, as docs/images/<name>.png."""
    from PIL import Image

    image = Image.open(io.BytesIO(page.screenshot(full_page=full_page))).convert("RGB")
    image = image.crop((0, 0, image.width, min(image.height, max_height_px)))
    if image.width > 1100:
        image = image.resize((1100, round(image.height * 1100 / image.width)), Image.Resampling.LANCZOS)
    IMAGES.mkdir(parents=True, exist_ok=True)
    out = IMAGES / f"{name}.png"
    for colours in (128, 64, 32):
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
        if out.stat().st_size < MAX_BYTES:
            break
    assert out.stat().st_size < MAX_BYTES, f"{out} is {out.stat().st_size} bytes"
    return out


def _wait_text(page, selector: str, text: str, timeout_ms: int = 60_000) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                           arg=[selector, text], timeout=timeout_ms)


def _open(page, tab: str) -> None:
    page.get_by_role("tab", name=tab).click()


@pytest.fixture
def demo_world(world_dataset, tiny_model_dir):
    """The world dataset with a few reviews, and direct SFT + RB-FT (Stage I -> II) trained and evaluated."""
    from db import queries
    from db.engine import dispose_engines, session_scope
    from db.models import Review
    from rbft_core.specs.training import EvaluateSpec, TrainSpec
    from rbft_core.training.evaluate import evaluate_run
    from rbft_core.training.train import train_stage

    name, url = world_dataset
    with session_scope(url) as s:
        reviews = sorted(s.query(Review).all(), key=lambda r: r.id)
        for review, status in zip(reviews, ("accepted", "accepted", "accepted", "rejected", "draft")):
            queries.save_review(s, review.id, expected_version=review.version, reviewer="ana", status=status)
    model = str(tiny_model_dir)
    sft = train_stage(url, TrainSpec(dataset=name, stage=2, model=model, **FAST))
    s1 = train_stage(url, TrainSpec(dataset=name, stage=1, model=model, **FAST))
    rbft = train_stage(url, TrainSpec(dataset=name, stage=2, model=model, init_from=s1.run_id, **FAST))
    for run in (sft, rbft):  # each with its own sampling (the run's spec)
        evaluate_run(url, name, run_id=run.run_id, cfg=EvaluateSpec(dataset=name))
    dispose_engines()
    return name, url, model


def test_screenshots_of_every_tab(demo_world, start_app, page, data_dir):
    name, url, model = demo_world
    page.goto(start_app(url, data_dir))
    _wait_text(page, "#guide-train", "3 runs")
    page.get_by_text("Getting started guide (5 steps)").click()  # folded once runs exist: open it for the picture
    page.locator("#guide-import").wait_for(state="visible")
    _wait_text(page, "#ds-report", "Last import")
    _shot(page, "datasets")

    page.get_by_text("Getting started guide (5 steps)").click()  # fold it again: the tabs below are the subject
    _open(page, "Review")
    page.wait_for_selector("#rv-header b", timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#rv-frames img').length > 0", timeout=30_000)
    _shot(page, "review")

    _open(page, "Train")
    _wait_text(page, "#train-compare", "RB-FT")
    _shot(page, "train-results")

    _open(page, "Inspect")
    page.wait_for_function("() => (document.querySelector('#inspect-run-b input')?.value || '').includes('stage2')",
                           timeout=60_000)
    page.click("#inspect-show")
    page.wait_for_function("() => document.querySelectorAll('#inspect-frames-b img').length >= 2", timeout=120_000)
    page.wait_for_function("() => { const i = document.querySelector('#inspect-frame img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=60_000)
    _shot(page, "inspect")

    _open(page, "Export")
    page.get_by_role("checkbox", name="abnormal", exact=True).wait_for()
    page.get_by_role("button", name="Preview").click()
    _wait_text(page, "#export-summary", "videos")
    page.get_by_role("button", name="Export zip").click()
    page.locator("#export-download").wait_for(state="visible", timeout=120_000)
    _shot(page, "export")

    _two_reviewers_answer(url, name)
    _open(page, "Quality")
    page.click("#q-show")
    _wait_text(page, "#q-summary", "Krippendorff")
    for plot in ("#q-agreement", "#q-edits", "#q-throughput"):
        page.wait_for_function("s => { const i = document.querySelector(s + ' img'); return i && i.complete && "
                               "i.naturalWidth > 200; }", arg=plot, timeout=30_000)
    _shot(page, "quality")


def _two_reviewers_answer(url: str, name: str) -> None:
    """The dataset asks for two reviews per item; ann and bob answer the pending items (labels apart on one)."""
    from rbft_core.review import adjudication, responses, workspace

    adjudication.change_settings(url, name, "admin", reviews_per_item=2)
    pending = workspace.neighbour(url, workspace.ReviewFilter(dataset=name, status="pending"), None)
    done = 0
    while pending is not None and done < 4:
        item = workspace.load_item(url, pending)
        for who in ("ann", "bob"):
            mine = responses.load(url, pending, who)
            fields = dict(item.fields)
            if who == "bob" and done % 2:
                fields["scenes"] = (fields.get("scenes") or "") + ", seen from the street"
            label = item.label if who == "ann" or done != 1 else next(lb for lb in item.labels if lb != item.label)
            responses.save(url, pending, expected_version=mine.version, reviewer=who, action="edit", fields=fields,
                           label=label)
        done += 1
        pending = workspace.neighbour(url, workspace.ReviewFilter(dataset=name, status="pending"), None)


def test_screenshot_of_a_live_training_curve(world_dataset, tiny_model_dir, start_app, page, data_dir):
    """A direct SFT run started from the page, pictured while its loss curve grows, then stopped."""
    from db import job_queries as jq
    from db.engine import session_scope
    from rbft_core.jobs.runner import stop_job

    name, url = world_dataset
    page.goto(start_app(url, data_dir))
    _open(page, "Train")
    page.wait_for_function("() => (document.querySelector('#train-dataset input')?.value || '') === 'world'")
    page.locator("#train-model textarea, #train-model input").first.fill(str(tiny_model_dir))
    page.get_by_text("Settings per stage").click()
    for field, value in (("num_frames", 4), ("max_pixels", 3136), ("epochs", 200)):
        box = page.locator(f"#train-s2-{field} input")
        box.fill(str(value))
        box.press("Tab")
    page.get_by_text("Settings per stage").click()
    page.locator("#train-run-direct").click()
    try:
        page.wait_for_function("() => +(document.querySelector('#train-progress')?.dataset.step || 0) >= 8",
                               timeout=240_000)
        time.sleep(2.5)  # the next tick redraws the curve with those points
        page.locator("#train-loss").scroll_into_view_if_needed()
        _shot(page, "train-live")
    finally:
        with session_scope(url) as s:
            active = [j.id for j in jq.jobs_with_status(s, jq.ACTIVE_STATUSES)]
        for job_id in active:
            stop_job(url, job_id, timeout_s=60)

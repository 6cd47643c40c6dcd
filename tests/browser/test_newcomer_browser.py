"""Issue #18 in a real browser: the sampling fields show the model folder's values and say where they came from;
a job's progress, log and Stop button follow it, and after it ends a page reload still shows it, marked finished
with its duration, until another job starts."""

from __future__ import annotations

import json
import time

import pytest

from db import job_queries as jq
from db.engine import session_scope
from rbft_core.models.model_sampling import write_model_sampling
from rbft_core.specs.sampling import Sampling
from rbft_core.tabs import datasets as datasets_logic
from tests.train_world import OWN_LINES, training_job

pytestmark = pytest.mark.browser


def _demo_like_model(data_dir, num_frames: int):
    """A model folder where `rbft demo build` puts the demo model (the app offers it by default)."""
    folder = data_dir / "demo" / "base-model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "build.json").write_text(json.dumps({"key": "test"}))
    write_model_sampling(folder, Sampling(num_frames=num_frames, max_pixels=12544))
    return folder


def _value(page, selector: str) -> str:
    return page.locator(selector).first.input_value()


def test_sampling_fields_show_the_model_folders_values_and_their_source(start_app, page, db_url, data_dir, tmp_path):
    _demo_like_model(data_dir, num_frames=4)
    datasets_logic.create_dataset(db_url, "homes", preset="smart-home")
    url = start_app(db_url, data_dir)
    page.goto(url)

    page.get_by_role("tab", name="Datasets").click()
    page.get_by_text("Generate rationales (runs as a job)").click()
    page.locator("#ds-gen-frames-note").get_by_text("rbft_sampling.json").wait_for()
    assert _value(page, "#ds-gen-frames input") == "4"
    assert page.locator("#ds-gen-frames-note").inner_text().startswith("4 frames: from ")

    page.get_by_role("tab", name="Train").click()
    page.locator("#train-sampling-note").get_by_text("base-model/rbft_sampling.json").wait_for()
    assert "4 frames at 12,544 px (frames, max pixels from" in page.locator("#train-sampling-note").inner_text()
    page.get_by_text("Settings per stage").click()
    assert _value(page, "#train-s1-num_frames input") == "4" and _value(page, "#train-s2-num_frames input") == "4"

    other = tmp_path / "other-model"  # a model typed by the user: its folder's values replace the demo's
    other.mkdir()
    write_model_sampling(other, Sampling(num_frames=6, max_pixels=3136))
    page.locator("#train-model textarea, #train-model input").first.fill(str(other))
    page.locator("#train-sampling-note").get_by_text("other-model/rbft_sampling.json").wait_for()
    page.wait_for_function("() => document.querySelector('#train-s2-num_frames input').value === '6'")
    assert _value(page, "#train-s1-max_pixels input") == "3136"
    page.locator("#train-s1-num_frames input").fill("2")  # a value typed afterwards stays (the user's wins)
    page.locator("#train-s1-num_frames input").press("Tab")
    time.sleep(1.0)
    assert _value(page, "#train-s1-num_frames input") == "2" and _value(page, "#train-s2-num_frames input") == "6"


def _progress(page) -> dict:
    return page.eval_on_selector("#train-progress", "el => ({status: el.dataset.status, job: +el.dataset.job, "
                                                   "finished: el.dataset.finished, text: el.innerText})")


def test_the_finished_job_stays_on_screen_after_a_reload_and_stop_follows_the_job(start_app, page, db_url,
                                                                                   data_dir):
    datasets_logic.create_dataset(db_url, "homes", preset="smart-home")
    job = training_job(db_url, data_dir, "homes", status="running", kind="pipeline", duration_s=75.0)
    url = start_app(db_url, data_dir)
    page.goto(url)
    page.get_by_role("tab", name="Train").click()
    stop = page.locator("#train-stop")
    page.wait_for_function("() => document.querySelector('#train-progress')?.dataset.status === 'running'")
    assert stop.is_enabled() and stop.inner_text().strip() == f"Stop job {job} (pipeline)"

    with session_scope(db_url) as s:  # the job ends while the page watches it
        jq.update_job(s, job, status="succeeded", progress=1.0)
    page.wait_for_function("() => document.querySelector('#train-progress')?.dataset.finished === '1'",
                           timeout=30_000)
    assert stop.is_disabled() and stop.inner_text().strip() == "Stop (no job running)"

    time.sleep(0.5)
    page.reload()
    page.get_by_role("tab", name="Train").click()
    page.wait_for_function("() => document.querySelector('#train-progress')?.dataset.finished === '1'")
    state = _progress(page)
    assert state["job"] == job and state["status"] == "succeeded"
    assert "finished after 1 min" in state["text"]  # the duration, from the job's start to its end
    log = page.locator("#train-log textarea").input_value()
    assert log.splitlines()[: len(OWN_LINES)] == OWN_LINES and "library warning hidden" in log
    assert page.locator("#train-loss img, #train-loss svg, #train-loss canvas").count() >= 1  # the curve, drawn
    assert page.locator("#train-stop").is_disabled()

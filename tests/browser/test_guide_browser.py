"""The first-run guide in a real browser: counts from the database, buttons that select tabs, folded once a run
exists and opened again from its header."""

from __future__ import annotations

import pytest

from db import job_queries as jq
from db import queries
from db.engine import session_scope
from tests.export_world import build_world

pytestmark = pytest.mark.browser


def _selected_tab(page) -> str:
    return page.locator("[role=tab][aria-selected=true]").inner_text().strip()


def _wait_selected(page, title: str) -> None:
    page.wait_for_function("t => document.querySelector('[role=tab][aria-selected=true]')?.innerText.trim() === t",
                           arg=title)


def test_guide_shows_counts_and_its_buttons_select_tabs(start_app, page, db_url, data_dir, tmp_path):
    build_world(db_url, tmp_path)  # 6 videos with suggestions; 3 accepted, 1 rejected, 1 draft
    page.goto(start_app(db_url, data_dir))
    page.wait_for_function("() => (document.querySelector('#guide-import')?.innerText || '').includes('6 videos')")
    assert "1 dataset, 6 videos" in page.inner_text("#guide-import")
    assert "6 rationales" in page.inner_text("#guide-generate")
    assert "4 reviewed" in page.inner_text("#guide-review")
    assert "← next" in page.inner_text("#guide-train") and "Train" in page.inner_text("#guide-next")

    page.click("#guide-go-review")
    _wait_selected(page, "Review")
    page.click("#guide-go-export")
    _wait_selected(page, "Export")
    page.click("#guide-go-next")  # the first step not done yet: train
    _wait_selected(page, "Train")
    assert _selected_tab(page) == "Train"


def test_guide_folds_once_a_run_exists_and_opens_again_from_its_header(start_app, page, db_url, data_dir, tmp_path):
    build_world(db_url, tmp_path)
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, "homes")
        jq.upsert_run(s, "run-1", dataset_id=ds.id, kind="stage2", stage=2, base_model="tiny", status="succeeded",
                      run_dir=str(tmp_path / "runs" / "run-1"))
    page.goto(start_app(db_url, data_dir))
    header = page.get_by_text("Getting started guide (5 steps): click to show it again")
    header.wait_for()
    page.locator("#guide-go-next").wait_for(state="hidden")  # folded: the steps are out of the way
    header.click()
    page.locator("#guide-train").wait_for(state="visible")
    assert "1 run (1 finished)" in page.inner_text("#guide-train")
    page.click("#guide-go-inspect")
    _wait_selected(page, "Inspect")

"""The first-run guide's events, called the way Gradio calls them (the wired function through the shared adapter),
on an empty database, on a curated dataset and once a run exists; and its counts as plain data."""

from __future__ import annotations

import gradio as gr
import pytest

from db import job_queries as jq
from db import queries
from db.engine import session_scope
from rbft_core.tabs.guide import guide_state
from tests.export_world import build_world
from ui.app import TABS
from ui.guide import FOLDED_LABEL, OPEN_LABEL, build_guide, tab_id

pytestmark = pytest.mark.both_backends  # the counts are grouped sums over the counters on both databases


@pytest.fixture
def guide(db_url, data_dir):
    """(panel, fire): the guide above the app's tabs; ``fire(component, event)`` runs what that event runs."""
    with gr.Blocks() as demo:
        panel = build_guide()
        with gr.Tabs() as tabs:
            for title, _build in TABS:
                with gr.Tab(title, id=tab_id(title)):
                    gr.Markdown(title)
        panel.attach(demo, db_url, tabs)

    def fire(component, event: str = "click"):
        for fn in demo.fns.values():
            if (component._id, event) in [tuple(t) for t in fn.targets]:
                return fn.fn(None)
        raise AssertionError(f"no {event} event on {component}")

    fire.load = lambda: next(fn.fn(None) for fn in demo.fns.values() if fn.targets[0][1] == "load")
    return panel, fire


def _loaded(panel, fire) -> dict:
    """The page-load outputs by name: accordion, next line, next button, and the five cards' texts."""
    out = fire.load()
    names = ["accordion", "next", "go_next", "import", "generate", "review", "train", "inspect"]
    return dict(zip(names, out))


def _selected(update) -> str:
    assert isinstance(update, gr.Tabs)
    return update.selected


def test_empty_database_guide_is_open_and_points_at_import(guide):
    panel, fire = guide
    shown = _loaded(panel, fire)
    assert shown["accordion"].open is True and shown["accordion"].label == OPEN_LABEL
    assert "0 datasets, 0 videos" in shown["import"] and "← next" in shown["import"]
    assert "0 rationales" in shown["generate"] and "0 reviewed" in shown["review"] and "0 runs" in shown["train"]
    assert "Next: **Import**" in shown["next"] and "Datasets" in shown["go_next"].value
    assert _selected(fire(panel.go_next)) == "datasets"


def test_counts_follow_the_database_and_the_next_step_button_moves_on(guide, db_url, tmp_path):
    panel, fire = guide
    build_world(db_url, tmp_path)  # 6 videos with suggestions: 3 accepted, 1 draft, 1 rejected, 1 pending
    shown = _loaded(panel, fire)
    assert "1 dataset, 6 videos" in shown["import"] and "✓" in shown["import"]
    assert "6 rationales" in shown["generate"] and "✓" in shown["generate"]
    assert "4 reviewed, 1 draft" in shown["review"] and "✓" in shown["review"]
    assert "0 runs" in shown["train"] and "← next" in shown["train"]
    assert shown["accordion"].open is True
    assert _selected(fire(panel.go_next)) == "train"


def test_each_step_button_selects_its_tab(guide):
    panel, fire = guide
    expected = {panel.imports.go: "datasets", panel.generate.go: "datasets", panel.review.go: "review",
                panel.train.go: "train", panel.inspect.go: "inspect", panel.export: "export"}
    for button, tab in expected.items():
        assert _selected(fire(button)) == tab
    assert {tab_id(title) for title, _ in TABS} >= set(expected.values())  # every target is a real tab id


def test_guide_folds_away_once_a_run_exists_and_refresh_rereads_the_counts(guide, db_url, tmp_path):
    panel, fire = guide
    build_world(db_url, tmp_path)
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, "homes")
        jq.upsert_run(s, "run-1", dataset_id=ds.id, kind="stage2", stage=2, base_model="tiny", status="succeeded",
                      run_dir=str(tmp_path / "runs" / "run-1"))
    shown = _loaded(panel, fire)
    assert shown["accordion"].open is False and shown["accordion"].label == FOLDED_LABEL  # its header reopens it
    assert "1 run (1 finished)" in shown["train"] and "1 run to inspect, 0 exports" in shown["inspect"]
    again = fire(panel.refresh)  # the refresh button reads the counts again, same outputs as a page load
    assert again[0].open is False and "1 run (1 finished)" in again[6]


def test_guide_state_is_plain_data_from_the_counters(db_url, tmp_path, data_dir):
    build_world(db_url, tmp_path)
    state = guide_state(db_url)
    assert [s.key for s in state.steps] == ["import", "generate", "review", "train", "inspect"]
    assert state.step("import").count == "1 dataset, 6 videos" and state.next_step == "train"
    assert not state.has_run

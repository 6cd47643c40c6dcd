"""Export tab events, called the way Gradio calls them (the wired function with positional values in the API's
order, through the shared adapter), without a server or a browser."""

from __future__ import annotations

import json
import zipfile

import gradio as gr
import pytest

from tests.export_world import build_world
from ui import export_tab

DEFAULTS = dict(fmt="hf", stage="both", splits=["train", "val", "test"], statuses=["accepted"], edited="any",
                labels=["normal", "abnormal"], include_excluded=False, copy_videos=True, name="")


def _args(**changes):
    values = {**DEFAULTS, **changes}
    return [values[k] for k in DEFAULTS]


@pytest.fixture
def world(db_url, tmp_path, data_dir):
    return build_world(db_url, tmp_path)


@pytest.fixture
def call(world):
    """``call(api_name, *values)``: the export tab's wired event function (request None, as no login)."""
    with gr.Blocks() as demo:
        export_tab.build_export_tab().attach(demo, world.db_url)
    events = {fn.api_name: fn for fn in demo.fns.values()}

    def run(api_name, *values):
        return events[api_name].fn(None, *values)
    return run


def test_load_and_dataset_fill_the_choices(call):
    assert call("on_load").value == "homes"
    assert call("on_dataset", "homes").value == ["normal", "abnormal"]


def test_preview_shows_counts_and_first_rows(call):
    summary, rows = call("export_preview", "homes", *_args())
    assert "**2 videos**" in summary and "Stage 1: 2 train" in summary
    assert [r[0] for r in rows] == ["normal/v0.mp4", "abnormal/v1.mp4"]
    assert rows[1][4] is True and "two people" in rows[1][6]


def test_export_returns_a_download_of_the_zip(call, data_dir):
    text, button = call("export_zip", "homes", *_args(name="my/../export"))
    assert isinstance(button, gr.DownloadButton) and button.visible
    path = button.value if isinstance(button.value, str) else button.value["path"]
    assert path.endswith("/my_export.zip")
    assert len(list((data_dir / "exports").glob("*/my_export.zip"))) == 1  # one fresh folder per click
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("my_export/manifest.json"))
    assert manifest["counts"]["videos"] == 2 and "Exported 2 videos" in text


def test_errors_are_gradio_errors_naming_the_fix(call):
    with pytest.raises(gr.Error, match="no split is ticked"):
        call("export_preview", "homes", *_args(splits=[]))
    with pytest.raises(gr.Error, match="match the selection .* nothing was written"):
        call("export_zip", "homes", *_args(statuses=["rejected"], labels=["normal"]))
    with pytest.raises(gr.Error, match="no dataset chosen"):
        call("export_zip", None, *_args())

"""The Export tab in a real browser: preview, export, download the zip."""

from __future__ import annotations

import json
import re
import zipfile

import pytest

from tests.export_world import build_world

pytestmark = pytest.mark.browser


def test_export_tab_previews_and_downloads_the_zip(start_app, page, db_url, data_dir, tmp_path):
    build_world(db_url, tmp_path)
    url = start_app(db_url, data_dir)
    page.goto(url)
    page.get_by_role("tab", name="Export").click()
    dataset = page.get_by_role("combobox", name="Dataset")
    page.wait_for_function("el => el.value === 'homes'", arg=dataset.element_handle())
    page.get_by_role("checkbox", name="abnormal", exact=True).wait_for()  # labels filled from the dataset

    page.get_by_role("button", name="Preview").click()
    page.get_by_text(re.compile(r"2 videos")).wait_for()
    page.get_by_text("abnormal/v1.mp4").filter(visible=True).wait_for()  # first rows of the preview table

    page.get_by_label("Export name").fill("from/the browser")
    page.get_by_role("button", name="Export zip").click()
    download_button = page.get_by_role("button", name=re.compile(r"Download from_the_browser\.zip"))
    download_button.wait_for(state="visible")
    with page.expect_download() as info:
        download_button.click()
    saved = tmp_path / "downloaded.zip"
    info.value.save_as(saved)
    assert info.value.suggested_filename == "from_the_browser.zip"
    with zipfile.ZipFile(saved) as archive:
        manifest = json.loads(archive.read("from_the_browser/manifest.json"))
        names = archive.namelist()
    assert manifest["counts"]["videos"] == 2 and manifest["format"] == "llamafactory"
    assert "from_the_browser/dataset_info.json" in names
    assert sum(n.startswith("from_the_browser/videos/") for n in names) == 2

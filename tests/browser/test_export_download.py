"""The Export tab in a real browser: preview, export as a job (progress bar, re-attached after a reload), download
the zip."""

from __future__ import annotations

import json
import re
import textwrap
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
    page.wait_for_function("() => (document.querySelector('#export-job')?.innerText || '').includes('export job')")
    download_button = page.get_by_role("button", name=re.compile(r"Download from_the_browser\.zip"))
    download_button.wait_for(state="visible", timeout=120_000)  # the job has written the zip
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


# A test double at the file-system boundary: in the export job's process every video copy takes SLOW_COPY_S, so
# the job is still running when the page reloads. Nothing in the app knows about it.
SLOW_COPY_S = 4.0
SITECUSTOMIZE = textwrap.dedent(f"""
    import shutil, sys, time
    _copy2 = shutil.copy2

    def _slow_copy2(src, dst, **kwargs):
        if "jobs/runner" in (sys.argv[0] if sys.argv else ""):
            time.sleep({SLOW_COPY_S})
        return _copy2(src, dst, **kwargs)

    shutil.copy2 = _slow_copy2
""")


def _job_text(page) -> str:
    return page.inner_text("#export-job")


def test_export_job_reattaches_after_a_reload_and_ends_with_a_download(start_app, page, db_url, data_dir, tmp_path):
    build_world(db_url, tmp_path)
    hooks = tmp_path / "slow-copy"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    url = start_app(db_url, data_dir, python_path=(hooks,))
    page.goto(url)
    page.get_by_role("tab", name="Export").click()
    page.get_by_role("checkbox", name="abnormal", exact=True).wait_for()
    page.get_by_label("Export name").fill("reloaded")
    page.get_by_role("button", name="Export zip").click()
    # running, with a progress bar and videos done / total
    page.wait_for_function("() => { const t = document.querySelector('#export-job')?.innerText || '';"
                           " return t.includes('running') && /\\d\\/2 videos copied/.test(t); }", timeout=60_000)
    assert page.locator("#export-job progress").count() == 1

    page.reload()  # the job runs detached: the reloaded page finds it and follows it again
    page.get_by_role("tab", name="Export").click()
    page.wait_for_function("() => (document.querySelector('#export-job')?.innerText || '').includes('running')",
                           timeout=30_000)
    assert re.search(r"\d/2 videos copied", _job_text(page)), _job_text(page)
    assert page.locator("#export-job progress").count() == 1

    download_button = page.get_by_role("button", name=re.compile(r"Download reloaded\.zip"))
    download_button.wait_for(state="visible", timeout=120_000)
    assert "succeeded" in _job_text(page) and "2/2 videos placed" in _job_text(page)
    with page.expect_download() as info:
        download_button.click()
    saved = tmp_path / "reloaded.zip"
    info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("reloaded/manifest.json"))
    assert manifest["counts"]["videos"] == 2 and sum(n.startswith("reloaded/videos/") for n in names) == 2

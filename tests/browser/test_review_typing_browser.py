"""Unsaved typing in the Review tab survives a reload and an app restart (the browser keeps it, ui/typing_keeper.py).

Real Debian chromium through playwright, the app as a subprocess; the restarted app listens on the same port, as a
restarted server would, so the page's origin (and its localStorage) is the same.
"""

from __future__ import annotations

import json

import pytest

from rbft_core.review import workspace as review
from tests.review_world import box, free_port, make_review_world, start_app, stop_app

pytestmark = pytest.mark.browser

TYPED = "porch at dusk, typed but not saved"
MORE = " and more while the app was down"


@pytest.fixture
def world(tmp_path, db_url, data_dir):
    from db.engine import dispose_engines

    ids = make_review_world(db_url, tmp_path / "homes")
    dispose_engines()
    return ids


def _enter_review(page) -> None:
    page.get_by_role("tab", name="Review").click()
    page.wait_for_selector("#rv-header .rv-header[data-review]", timeout=60_000)


def _wait_header(page, text: str) -> None:
    page.wait_for_function("t => (document.querySelector('#rv-header')?.innerText || '').includes(t)", arg=text,
                           timeout=30_000)


def _wait_value(page, dim: str, value: str) -> None:
    page.wait_for_function("([selector, v]) => document.querySelector(selector)?.value === v", arg=[box(dim), value],
                           timeout=30_000)


def _kept(page) -> dict:
    return page.evaluate("() => Object.fromEntries(Object.keys(localStorage).filter(k => k.startsWith('rbft-typing:'))"
                         ".map(k => [k.split(':').pop(), JSON.parse(localStorage.getItem(k))]))")


def _jump(page, ref: str) -> None:
    page.keyboard.press("Alt+J")
    page.keyboard.type(ref)
    page.keyboard.press("Enter")
    _wait_header(page, ref)


def test_unsaved_typing_survives_a_reload_and_an_app_restart(browser, world, db_url, data_dir, tmp_path):
    port = free_port()
    proc, url = start_app(db_url, tmp_path / "app-data", port)
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    try:
        page.goto(url)
        _enter_review(page)
        _wait_header(page, "clip_2")  # the queue's first item
        scenes = page.locator(box("scenes"))
        scenes.click()
        page.keyboard.type(TYPED)
        assert _kept(page)[str(world["clip_2"])]["fields"]["scenes"] == TYPED

        page.reload()  # a reload: the fields come from the server (empty), then the kept text is put back
        _enter_review(page)
        _wait_header(page, "clip_2")
        _wait_value(page, "scenes", TYPED)
        assert "had not saved" in page.inner_text("#rv-kept")

        stop_app(proc)  # the app goes down; the reviewer types on
        scenes.click()
        page.keyboard.press("End")
        page.keyboard.type(MORE)
        proc, url = start_app(db_url, tmp_path / "app-data", port)
        page.reload()
        _enter_review(page)
        _wait_header(page, "clip_2")
        _wait_value(page, "scenes", TYPED + MORE)
        # the put-back text reached the server's copy of the field: saving it stores it
        page.keyboard.press("Alt+S")
        _wait_header(page, "clip_0")
        page.wait_for_function("() => !Object.keys(localStorage).some(k => k.startsWith('rbft-typing:'))",
                               timeout=10_000)  # saved: the browser's copy is dropped
        assert review.load_item(db_url, world["clip_2"]).fields["scenes"] == TYPED + MORE
    finally:
        context.close()
        stop_app(proc)


def test_typing_elsewhere_is_offered_and_a_newer_save_is_never_overwritten(browser, world, db_url, data_dir, tmp_path):
    proc, url = start_app(db_url, tmp_path / "app-data")
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    try:
        page.goto(url)
        _enter_review(page)
        _jump(page, "clip_1")
        page.locator(box("actions")).click()
        page.keyboard.press("Control+A")
        page.keyboard.type("she drops the keys at the door")
        shown = review.load_item(db_url, world["clip_1"])
        # meanwhile another reviewer saves clip_1
        review.save(db_url, world["clip_1"], expected_version=shown.version, reviewer="ben", action="edit",
                    fields={**shown.fields, "actions": "ben's words"}, label=shown.label)

        page.reload()
        _enter_review(page)
        _wait_header(page, "clip_2")  # the queue opens at its first item; the other item's typing is offered
        page.wait_for_function("() => (document.querySelector('#rv-kept')?.innerText || '').includes('clip_1')",
                               timeout=10_000)
        page.locator("#rv-kept button", has_text="Open it").click()
        _wait_header(page, "clip_1")
        # typed against an older version: offered, not put over ben's newer text
        page.wait_for_function("() => (document.querySelector('#rv-kept')?.innerText || '').includes('saved since')",
                               timeout=10_000)
        assert page.locator(box("actions")).input_value() == "ben's words"
        page.locator("#rv-kept button", has_text="Put my typing back").click()
        _wait_value(page, "actions", "she drops the keys at the door")
        assert json.dumps(_kept(page)[str(world["clip_1"])]["fields"]).count("she drops the keys") == 1
    finally:
        context.close()
        stop_app(proc)

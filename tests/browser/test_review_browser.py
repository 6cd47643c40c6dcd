"""The review workspace in a real browser: Debian chromium driven by playwright, the app as a subprocess.

One app (``python app.py --auth ...``) serves two datasets for the whole module: ``homes`` (three clips
reviewed with the keyboard only) and ``xss`` (a rationale holding markup and script).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.review_world import XSS, box, make_review_world, start_app, stop_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
USER, PASSWORD = "alice", "s3cret-pw"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing: `apt-get install chromium` "
                                                            "(make test does it as root)"),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from db.engine import dispose_engines, init_db

    root = tmp_path_factory.mktemp("review-app")
    db_url = f"sqlite:///{root / 'rbft.db'}"
    old = os.environ.get("RBFT_DATA_DIR")
    os.environ["RBFT_DATA_DIR"] = str(root / "data")
    try:
        init_db(db_url)
        make_review_world(db_url, root / "homes")
        make_review_world(db_url, root / "xss", dataset="xss", xss=True)
        dispose_engines()
        proc, url = start_app(db_url, root / "data", extra_args=("--auth", f"{USER}:{PASSWORD}"))
    finally:
        if old is None:
            os.environ.pop("RBFT_DATA_DIR", None)
        else:
            os.environ["RBFT_DATA_DIR"] = old
    yield url
    stop_app(proc)


# `browser` is the session-scoped fixture of tests/browser/conftest.py: one playwright per test session
# (a second sync_playwright() while the first runs fails with "Sync API inside the asyncio loop").


def _open(browser, url):
    """A fresh browser context (its own session), signed in, on the Review tab."""
    context = browser.new_context(viewport={"width": 1600, "height": 1150})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.get_by_label("username").fill(USER)
    page.get_by_label("password").fill(PASSWORD)
    page.keyboard.press("Enter")
    _enter_review(page)
    return page


def _enter_review(page) -> None:
    tab = page.get_by_role("tab", name="Review")
    tab.wait_for(timeout=30_000)
    tab.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#rv-header b", timeout=30_000)


def _wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                           arg=[selector, text], timeout=15_000)


def _wait_header(page, text: str) -> None:
    page.wait_for_function("t => document.querySelector('#rv-header').innerText.includes(t)", arg=text,
                           timeout=15_000)


def _field(page, dim: str):
    return page.locator(box(dim))


def test_keyboard_review_persists_after_reload(app, browser):
    page = _open(browser, app)
    _wait_header(page, "clip_2")  # doubt first: the parse failure leads
    assert "parse failed" in page.inner_text("#rv-suggestion")
    assert page.locator("#rv-frames img").count() == 8
    assert re.search(r"t=\d+\.\d\d s", page.inner_text("#rv-frames"))

    # edit the parse failure: Alt+1..4 focus the fields, Alt+S saves the edit and moves on
    for key, text in zip("1234", ["a grey cat", "small, striped", "walks across the porch", "porch, daylight"]):
        page.keyboard.press(f"Alt+{key}")
        page.keyboard.type(text)
    page.keyboard.press("Alt+S")
    _wait_header(page, "clip_0")  # then the contradiction
    assert "conclusion says normal but label is abnormal" in page.inner_text("#rv-suggestion")
    page.keyboard.press("Alt+R")  # reject
    _wait_header(page, "clip_1")
    page.keyboard.press("Alt+A")  # accept as is
    _wait_header(page, "Nothing to review")
    _wait_text(page, "#rv-counts", "pending 0")  # counts come with the item, in the same response
    counts = page.inner_text("#rv-counts")
    assert re.search(r"accepted\s*1", counts) and re.search(r"edited\s*1", counts)
    assert re.search(r"rejected\s*1", counts)

    page.reload()  # everything below comes from the database again
    _enter_review(page)
    _wait_text(page, "#rv-counts", "edited 1")
    page.keyboard.press("Alt+J")
    page.keyboard.type("clip_2")
    page.keyboard.press("Enter")
    _wait_header(page, "clip_2")
    assert _field(page, "subjects").input_value() == "a grey cat"
    assert _field(page, "scenes").input_value() == "porch, daylight"
    assert "accepted" in page.inner_text("#rv-status") and "edited" in page.inner_text("#rv-status")
    history = page.inner_text("#rv-history")
    assert f"by {USER}" in history and "a grey cat" in history and "pending → accepted" in history
    assert "a grey cat" in page.inner_text("#rv-diff")

    page.keyboard.press("Alt+J")
    page.keyboard.type("clip_0")
    page.keyboard.press("Enter")
    _wait_header(page, "clip_0")
    assert "rejected" in page.inner_text("#rv-status")
    page.wait_for_function("document.querySelectorAll('#rv-frames img').length == 8 && "
                           "[...document.querySelectorAll('#rv-frames img')].every(i => i.complete)")
    # the player has decoded a frame (H.264 plays in Debian chromium); the queue place came with the item
    page.wait_for_function("(document.querySelector('#rv-video video')?.readyState || 0) >= 2")
    _wait_text(page, "#rv-place", "not in this filter")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review.png"), full_page=True)
    assert not page.dialogs


def _choose_dataset(page, name: str) -> None:
    page.click("#rv-dataset input")
    page.get_by_role("option", name=name).click()
    _wait_header(page, f"{name} › ")


def test_markup_in_rationale_is_text_and_two_tabs_conflict(app, browser):
    first, second = _open(browser, app), _open(browser, app)
    for page in (first, second):
        _choose_dataset(page, "xss")
        page.keyboard.press("Alt+J")
        page.keyboard.type("clip_0")
        page.keyboard.press("Enter")
        _wait_header(page, "clip_0")
    # the markup is shown literally, in the suggestion panel and in the editable field
    assert XSS in first.inner_text("#rv-suggestion")
    assert _field(first, "subjects").input_value() == XSS
    assert first.locator("#rv-suggestion script, #rv-suggestion img").count() == 0

    # tab 1 saves an edit; tab 2 (still on version 1) is refused and shown tab 1's text
    _field(first, "actions").fill("walks away <b>fast</b>")
    first.keyboard.press("Alt+S")
    _wait_header(first, "clip_1")  # the next one after clip_0 in doubt order
    _field(second, "actions").fill("runs <i>off</i>")
    second.keyboard.press("Alt+S")
    toast = second.get_by_test_id("toast-body")
    toast.wait_for(timeout=15_000)
    message = toast.inner_text()
    assert "was saved by alice" in message and "walks away <b>fast</b>" in message
    assert "clip_0" in second.inner_text("#rv-header")  # stayed on the item, the typed text kept
    assert _field(second, "actions").input_value() == "runs <i>off</i>"

    second.keyboard.press("Alt+J")  # reload the item: history has both versions, the refused one marked
    second.keyboard.type("clip_0")
    second.keyboard.press("Enter")
    second.wait_for_function("document.querySelector('#rv-history').innerText.includes('REFUSED')")
    history = second.inner_text("#rv-history")
    assert "walks away <b>fast</b>" in history and "runs <i>off</i>" in history
    assert second.locator("#rv-history b:text('fast'), #rv-history i:text('off')").count() == 0
    assert not first.dialogs and not second.dialogs

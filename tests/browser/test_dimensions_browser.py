"""A five-dimension dataset reviewed in a real browser: the Review tab shows one box per dimension of the item's
dataset (five for the moderation preset plus "speech", four for a dataset with the paper's four), the fifth is
edited with the keyboard (Alt+5), kept by the typing keeper under its name, saved (Alt+S) and shown again.
The rest of the five-dimension path (generate, train, export) is tests/core/test_dimensions_e2e.py."""

from __future__ import annotations

import pytest

from db.engine import dispose_engines
from rbft_core.review import workspace as review
from tests.dimensions_world import FIVE_NAMES, make_five_dimension_world, suggest
from tests.review_world import make_review_world

pytestmark = pytest.mark.browser

SAID = "a sign reading 'leave now', typed in the browser"


def _boxes(page) -> list[dict]:
    """Each visible box of the form: its id, what it shows (label, description) and its text."""
    return page.evaluate("""() => [...document.querySelectorAll('[id^="rv-dim-"]')]
        .filter(b => b.offsetParent !== null)
        .map(b => ({id: b.id, text: b.innerText, value: b.querySelector('textarea')?.value ?? null}))""")


def _wait_header(page, text: str) -> None:
    page.wait_for_function("t => (document.querySelector('#rv-header')?.innerText || '').includes(t)", arg=text,
                           timeout=30_000)


def test_five_boxes_for_five_dimensions_the_fifth_edited_and_saved(tmp_path, db_url, data_dir, start_app, page):
    make_review_world(db_url, tmp_path / "homes")  # "homes" (the paper's four) opens first
    name = make_five_dimension_world(db_url, tmp_path / "mod5")
    ids = suggest(db_url, name)
    dispose_engines()
    page.goto(start_app(db_url, data_dir))
    page.get_by_role("tab", name="Review").click()
    _wait_header(page, "homes")
    page.wait_for_function("() => document.querySelector('#rv-dim-1 textarea') !== null")
    assert [b["id"] for b in _boxes(page)] == ["rv-dim-1", "rv-dim-2", "rv-dim-3", "rv-dim-4"]

    page.click("#rv-dataset input")
    page.get_by_role("option", name=name).click()
    _wait_header(page, name)
    page.wait_for_function("() => document.querySelector('#rv-dim-5')?.offsetParent !== null")
    boxes = _boxes(page)
    assert [b["id"] for b in boxes] == [f"rv-dim-{i}" for i in range(1, 6)]
    assert "Speech (optional) (Alt+5)" in boxes[4]["text"] and "on-screen text and speech" in boxes[4]["text"]
    assert "Subjects (Alt+1)" in boxes[0]["text"] and "who or what appears" in boxes[0]["text"]
    header = page.locator("#rv-header .rv-header").get_attribute("data-dims")
    assert header.split() == list(FIVE_NAMES)
    first = page.locator("#rv-header code").inner_text()  # the most doubtful item of mod5
    shown = review.load_item(db_url, ids[first])
    assert [b["value"] for b in boxes] == [shown.fields[d] for d in FIVE_NAMES]

    page.keyboard.press("Alt+5")
    page.wait_for_function("() => document.activeElement?.closest('#rv-dim-5') !== null")
    page.keyboard.press("Control+A")
    page.keyboard.type(SAID)
    kept = page.evaluate("() => Object.entries(localStorage).filter(([k]) => k.startsWith('rbft-typing:'))"
                         ".map(([k, v]) => JSON.parse(v))")
    assert [draft["fields"]["speech"] for draft in kept] == [SAID]  # the typing keeper keeps it by name

    page.keyboard.press("Alt+S")  # save the edit, open the next item
    page.wait_for_function("t => !(document.querySelector('#rv-header')?.innerText || '').includes(t)",
                           arg=f"· {first} ·", timeout=30_000)
    saved = review.load_item(db_url, ids[first])
    assert saved.status == "accepted" and saved.fields["speech"] == SAID and saved.stored["speech"] == SAID
    assert all(saved.fields[d] == shown.fields[d] for d in FIVE_NAMES[:4])  # the other four as they were
    assert ("speech", None, SAID) in review.history(db_url, ids[first])[0]["changes"]  # None: it was the model's

    page.keyboard.press("Alt+J")
    page.keyboard.type(first)
    page.keyboard.press("Enter")
    _wait_header(page, f"{first}")
    page.wait_for_function("t => document.querySelector('#rv-dim-5 textarea')?.value === t", arg=SAID)
    history = page.inner_text("#rv-history")
    assert "speech" in history and "a sign reading 'leave now'" in history

"""Several reviewers per item in a real browser (issue #15, part 2): two signed-in reviewers answer the same item
of a dataset asking for two reviews per item, an adjudicator finalises it, and Stage I trains on that final text.

One app (``python app.py --auth db``) for the module; the logins are in the users table (``rbft users add``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.review_world import box, make_review_world, start_app, stop_app

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "a long test password"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing: `apt-get install chromium` "
                                                            "(make test does it as root)"),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from db.engine import dispose_engines, init_db
    from rbft_core import auth
    from rbft_core.review import adjudication

    root = tmp_path_factory.mktemp("reviewers-app")
    db_url = f"sqlite:///{root / 'rbft.db'}"
    old = os.environ.get("RBFT_DATA_DIR")
    os.environ["RBFT_DATA_DIR"] = str(root / "data")
    try:
        init_db(db_url)
        ids = make_review_world(db_url, root / "homes")
        for name, role in (("ann", "reviewer"), ("bob", "reviewer"), ("cara", "adjudicator"), ("boss", "admin")):
            auth.add_user(db_url, name, role, PASSWORD)
        adjudication.change_settings(db_url, "homes", "boss", reviews_per_item=2)
        dispose_engines()
        proc, url = start_app(db_url, root / "data", extra_args=("--auth", "db"))
    finally:
        if old is None:
            os.environ.pop("RBFT_DATA_DIR", None)
        else:
            os.environ["RBFT_DATA_DIR"] = old
    yield {"url": url, "db_url": db_url, "ids": ids, "data": root / "data"}
    stop_app(proc)


def _sign_in(browser, url, user):
    context = browser.new_context(viewport={"width": 1600, "height": 1150})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(PASSWORD)
    page.keyboard.press("Enter")
    return page


def _tab(page, name: str, ready: str) -> None:
    tab = page.get_by_role("tab", name=name)
    tab.wait_for(timeout=30_000)
    tab.click()
    page.wait_for_selector(ready, timeout=30_000)


def _wait_text(page, selector: str, text: str, timeout: int = 20_000) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                           arg=[selector, text], timeout=timeout)


def _review(page, subjects: str, scenes: str) -> None:
    """Answer the open item with these two fields (the others stay the model's), Save edit, and wait for the next."""
    page.locator(box("subjects")).fill(subjects)
    page.locator(box("scenes")).fill(scenes)
    page.click("#rv-save")
    page.wait_for_function("!document.querySelector('#rv-header').innerText.includes('clip_2')", timeout=20_000)


def test_two_reviewers_answer_and_the_adjudicator_writes_what_stage_one_trains_on(app, browser):
    from rbft_core.review import workspace
    from rbft_core.training.sft_data import build_examples

    ann = _sign_in(browser, app["url"], "ann")
    _tab(ann, "Review", "#rv-header b")
    _wait_text(ann, "#rv-header", "clip_2")  # doubt first
    _wait_text(ann, "#rv-status", "0 of 2 responses submitted")
    _review(ann, "a man in a hoodie", "porch, daylight")
    _wait_text(ann, "#rv-place", "of 2 in this filter")  # clip_2 left ann's queue: two items remain for her

    bob = _sign_in(browser, app["url"], "bob")
    _tab(bob, "Review", "#rv-header b")
    _wait_text(bob, "#rv-header", "clip_2")  # still in bob's queue
    assert bob.locator(box("subjects")).input_value() == ""  # the model's text, never ann's answer
    _wait_text(bob, "#rv-status", "1 of 2 responses submitted")
    _review(bob, "a man in a dark hoodie", "front porch at noon")
    rid = app["ids"]["clip_2"]
    assert workspace.load_item(app["db_url"], rid).status == "ready"

    cara = _sign_in(browser, app["url"], "cara")
    _tab(cara, "Adjudicate", "#adj-header b")
    _wait_text(cara, "#adj-header", "clip_2")
    _wait_text(cara, "#adj-header", "2 of 2 responses")
    responses = cara.inner_text("#adj-responses")
    assert "ann" in responses and "bob" in responses and "a man in a dark hoodie" in responses
    assert cara.locator("#adj-responses ins").count() >= 2  # word diffs against the suggestion
    ARTIFACTS.mkdir(exist_ok=True)
    cara.screenshot(path=str(ARTIFACTS / "adjudicate.png"), full_page=True)
    cara.click("#adj-use")  # start from the first response (ann's) for every field ...
    cara.wait_for_function("s => document.querySelector(s).value === 'a man in a hoodie'", arg=box("subjects", "adj"))
    cara.locator(box("scenes", "adj")).fill("front porch, daylight")  # ... and merge bob's scene by hand
    cara.click("#adj-accept")
    _wait_text(cara, "#adj-header", "Nothing to adjudicate")

    final = workspace.load_item(app["db_url"], rid)
    assert final.status == "accepted" and final.reviewer == "cara"
    assert final.fields["subjects"] == "a man in a hoodie" and final.fields["scenes"] == "front porch, daylight"
    examples, _preset, _summary = build_examples(app["db_url"], "homes", 1)
    (example,) = [e for e in examples if e.video_id == final.video_id]
    assert example.origin == "human" and "a man in a hoodie" in example.target
    assert "front porch, daylight" in example.target and "dark hoodie" not in example.target
    assert not (ann.dialogs or bob.dialogs or cara.dialogs)


def test_the_quality_view_shows_alpha_and_the_plots(app, browser):
    from rbft_core.review import responses, workspace

    for clip, labels in (("clip_0", ("abnormal", "normal")), ("clip_1", ("normal", "normal"))):
        rid = app["ids"][clip]
        item = workspace.load_item(app["db_url"], rid)
        for who, label in zip(("ann", "bob"), labels):
            mine = responses.load(app["db_url"], rid, who)
            responses.save(app["db_url"], rid, expected_version=mine.version, reviewer=who, action="accept",
                           fields=item.fields, label=label)
    boss = _sign_in(browser, app["url"], "boss")
    _tab(boss, "Quality", "#q-show")
    # the page-load event fills the Dataset box: a click before it lands is answered "no dataset chosen" (CI, loaded)
    boss.wait_for_function("() => (document.querySelector('#q-dataset input')?.value || '') !== ''", timeout=30_000)
    boss.click("#q-show")
    # one event computes the report and draws its three plots; CI's two cores also run two test workers
    _wait_text(boss, "#q-summary", "Krippendorff", timeout=45_000)
    alpha = boss.inner_text("#q-summary .q-alpha")
    assert "over 3 items" in alpha and "n/a" not in alpha  # clip_0, clip_1 and the adjudicated clip_2
    assert "Cohen's kappa (ann vs bob)" in boss.inner_text("#q-summary")
    for plot in ("#q-agreement", "#q-edits", "#q-throughput"):
        boss.wait_for_function("s => { const i = document.querySelector(s + ' img'); return i && i.complete && "
                               "i.naturalWidth > 200; }", arg=plot, timeout=20_000)
    assert "subjects" in boss.inner_text("#q-dimensions") and "ann" in boss.inner_text("#q-reviewers")
    ARTIFACTS.mkdir(exist_ok=True)
    boss.screenshot(path=str(ARTIFACTS / "quality.png"), full_page=True)
    assert not boss.dialogs

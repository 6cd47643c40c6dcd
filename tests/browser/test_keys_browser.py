"""Every keyboard shortcut of the Review and Adjudicate tabs, pressed in a real browser, with its effect checked (issue
#15, part 5).

``CHECKS`` holds one check per entry of ``ui.keys.SHORTCUTS``; ``tests/ui/test_keys.py`` fails when a shortcut has
none. One app serves these datasets (a fresh page opens the first by name, ``homes``, in both tabs):

- ``homes`` (three clips; no check saves anything in it, so its queue is always clip_2, clip_0, clip_1; the filter
  checks narrow it, and the reset widens it again);
- ``writes`` (six clips; the accept / save / reject / reviewer checks act on whichever item it shows first, so each
  decides on an item of its own);
- ``mass-accept`` and ``mass-exclude`` (three clips each): a bulk key changes every item of the filter, so each
  bulk check has a dataset of its own and leaves the others' alone;
- ``panel`` (six clips, two reviews per item, ann and bob answered each): the Adjudicate tab's checks. Finalise,
  reject and the adjudicator's name act on whichever item it shows first; the others only read or type.

The checks share one browser page (a page load costs seconds; a check, about one). Before each check ``_reset`` puts
back everything a check may change, and proves it did: the browser's store (typing drafts, the chosen speed), the
help overlay, toasts, the strip's preview, the focus, the video (paused at 0 s, 1x), the Adjudicate tab (back on
``homes``, no adjudicator name, the Review tab shown), the filters, the reviewer's name, and the queue, re-opened on
``homes`` (the re-open saves nothing, unlike Next / Previous / Jump) with clip_2's stored text in the fields. So each
check starts where a fresh page would, in any order and alone. Should a reset fail (a check left the page broken),
the next check gets a fresh page instead.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from rbft_core.models.prompts import MAX_DIMENSIONS
from rbft_core.review import adjudication, responses
from rbft_core.review import workspace as review
from tests.review_world import SUGGESTIONS, make_review_world, queue_order, start_app, stop_app
from ui.keys import SHORTCUTS, help_rows
from ui.player import RATES

pytestmark = pytest.mark.browser

VIDEO = "document.querySelector('#rv-video video')"
SEARCH = "#rv-search :is(textarea, input)"
JUMP = "#rv-jump :is(textarea, input)"
CLIP_0 = dict((ext, fields) for ext, _label, fields in SUGGESTIONS)["clip_0"]
FOUR = ("subjects", "attributes", "actions", "scenes")
# the filters as a fresh page shows them: elem_id -> the text of its box
FILTERS = {"rv-filter-status": "todo", "rv-filter-label": "any", "rv-filter-split": "any", "rv-filter-edited": "any",
           "rv-flag": "any"}
REVIEWERS = ("ann", "bob")  # who answered each item of ``panel``


def _make_worlds(db_url: str, root) -> dict[str, int]:
    """Every dataset of the module (see its docstring); returns homes' external id -> review id."""
    homes = make_review_world(db_url, root / "homes")
    make_review_world(db_url, root / "writes", dataset="writes", extra=3)
    for name in ("mass-accept", "mass-exclude"):
        make_review_world(db_url, root / name, dataset=name)
    panel = make_review_world(db_url, root / "panel", dataset="panel", extra=3)
    adjudication.change_settings(db_url, "panel", "boss", reviews_per_item=2)
    for ext, review_id in panel.items():
        item = review.load_item(db_url, review_id)
        for who in REVIEWERS:
            fields = {dim: f"{who}'s {dim} of {ext}" for dim in item.names}
            responses.save(db_url, review_id, expected_version=responses.load(db_url, review_id, who).version,
                           reviewer=who, action="edit", fields=fields, label=item.label)
    return homes


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(URL, database URL, clip_2 as stored) of one app serving ``homes`` and ``writes`` to the whole module."""
    from db.engine import dispose_engines, init_db

    root = tmp_path_factory.mktemp("keys-app")
    db_url = f"sqlite:///{root / 'rbft.db'}"
    old = os.environ.get("RBFT_DATA_DIR")
    os.environ["RBFT_DATA_DIR"] = str(root / "data")
    try:
        init_db(db_url)
        # the app starts (about 10 s) while the datasets are built beside it: no page is loaded before both are done
        with ThreadPoolExecutor(1) as pool:
            built = pool.submit(_make_worlds, db_url, root)
            proc, url = start_app(db_url, root / "data")
            try:
                homes = built.result()
            except BaseException:
                stop_app(proc)
                raise
        dispose_engines()
    finally:
        if old is None:
            os.environ.pop("RBFT_DATA_DIR", None)
        else:
            os.environ["RBFT_DATA_DIR"] = old
    item = review.load_item(db_url, homes["clip_2"])  # the first item of the homes queue, as stored
    first = {"review": item.review_id, "fields": [item.fields[d] or "" for d in item.names], "label": item.label}
    yield url, db_url, first
    stop_app(proc)


class _Shared:
    """The module's one page, opened as each check used to get its own: a fresh context on the Review tab of
    ``homes``, its first item (clip_2) shown and its video loaded."""

    def __init__(self, browser, url: str):
        self.browser, self.url, self.page, self.video_src = browser, url, None, ""

    def open(self) -> None:
        self.close()
        context = self.browser.new_context(viewport={"width": 1600, "height": 1150})
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.goto(self.url)
        page.get_by_role("tab", name="Review").click()
        _wait_header(page, "clip_2")
        _wait_video(page)
        self.page, self.video_src = page, page.evaluate(f"() => {VIDEO}.currentSrc")

    def close(self) -> None:
        if self.page is not None:
            self.page.context.close()
            self.page = None


@pytest.fixture(scope="module")
def shared(app, browser):
    shared = _Shared(browser, app[0])
    shared.open()
    yield shared
    shared.close()


@pytest.fixture
def page(shared, app):
    """The shared page put back as a fresh one opens (``_reset``); a page a check left broken is opened anew."""
    try:
        _reset(shared, app[2])
    except Exception:
        shared.open()
        _reset(shared, app[2])
    page = shared.page
    yield page
    assert not page.errors


def _reset(shared: _Shared, first: dict) -> None:
    """Put back everything a check may change, then re-open the ``homes`` queue and wait until the page shows what a
    fresh one does; ``first`` is clip_2's review id, fields and label as stored.

    A marker goes into the subjects field first (set by script: no listener takes it for typing); the re-open's
    answer replaces it, so the fields checked below are the answer's, not what the last check left."""
    page = shared.page
    page.errors.clear()
    adjudicate_left = _leave_adjudicate(page)
    state = page.evaluate("""() => {
        localStorage.clear();  // the typing keeper's drafts (ui/typing_keeper.py) and the chosen speed (ui/player.py)
        const overlay = document.getElementById('rv-keys-overlay');
        if (overlay) overlay.hidden = true;
        document.querySelectorAll('.toast-close').forEach((b) => b.click());  // a bulk key's report
        document.querySelector("#rv-frames .preview button[aria-label='Close']")?.click();  // the strip's preview
        document.activeElement?.blur?.();
        const area = document.querySelector('#rv-dim-1 textarea');
        area.value = '(reset)';
        area.dispatchEvent(new Event('input', {bubbles: true}));
        return {homes: document.querySelector('#rv-dataset input').value === 'homes',
                parse: document.querySelector('#rv-filter-parse input').checked};
    }""")
    page.fill("#rv-reviewer :is(textarea, input)", "")
    page.fill(JUMP, "")
    page.fill(SEARCH, "")
    # each filter put back re-opens the queue (at its first item, saving nothing), and so does choosing a dataset
    reopened = state["parse"] or not state["homes"]
    if state["parse"]:
        page.click("#rv-filter-parse input")
    for elem_id, shown in FILTERS.items():
        if page.input_value(f"#{elem_id} input") != shown:
            _choose(page, elem_id, shown)
            reopened = True
    if not state["homes"]:
        _choose_dataset(page, "homes")
    elif not reopened:
        page.press(SEARCH, "Enter")  # re-opens the queue too; saves nothing (Next / Jump would)
    page.wait_for_function("""([f, filters]) => {
        const h = document.querySelector('#rv-header .rv-header[data-review]');
        const value = (i) => document.querySelector(`#rv-dim-${i + 1} textarea`)?.value;
        return h && +h.dataset.review === f.review && h.dataset.dataset === 'homes'
            && f.fields.every((t, i) => value(i) === t)
            && document.querySelector('#rv-label input')?.value === f.label
            && (document.querySelector('#rv-place')?.innerText || '').includes('1 of 3')
            && Object.entries(filters).every(([id, v]) => document.querySelector(`#${id} input`).value === v)
            && !document.querySelector('#rv-filter-parse input').checked
            && !document.querySelector('#rv-frames .preview') && !document.querySelector('.toast-body');
    }""", arg=[first, FILTERS])
    page.evaluate("() => document.activeElement?.blur?.()")  # the cursor outside any field
    page.wait_for_function(f"""src => {{  // clip_2's video, loaded, paused at 0 s, at 1x
        const v = {VIDEO};
        if (!v || v.currentSrc !== src || v.readyState < 2) return false;
        v.pause(); v.defaultPlaybackRate = 1; v.playbackRate = 1;
        if (v.currentTime !== 0) v.currentTime = 0;
        return !v.seeking && v.paused && v.currentTime === 0
            && document.getElementById('rv-vid-rate')?.innerText === '1x';
    }}""", arg=shared.video_src)
    assert page.evaluate("() => !document.activeElement?.closest?.('input, textarea, select')")
    assert _overlay_hidden(page)
    if adjudicate_left:
        page.wait_for_function("() => /Nothing to adjudicate/.test(document.querySelector('#adj-header').textContent)"
                               " && document.querySelector('#adj-dataset input').value === 'homes'")


def _leave_adjudicate(page) -> bool:
    """Put the Adjudicate tab back as a fresh page has it (``homes``: nothing to adjudicate; no adjudicator name) and
    show the Review tab; True where a check had been there (``_reset`` then waits for the re-open of ``homes``,
    which runs while it puts back the Review tab)."""
    used = page.evaluate("""() => {
        const shown = document.querySelector('[role=tab][aria-selected=true]')?.innerText.trim();
        const dataset = document.querySelector('#adj-dataset input');
        const who = document.querySelector('#adj-adjudicator :is(textarea, input)');
        return shown !== 'Review' || (!!dataset && dataset.value !== 'homes') || (!!who && who.value !== '');
    }""")
    if not used:
        return False
    page.get_by_role("tab", name="Adjudicate").click()
    page.fill("#adj-adjudicator :is(textarea, input)", "")
    if page.input_value("#adj-dataset input") != "homes":
        _choose_adj_dataset(page, "homes")
    page.get_by_role("tab", name="Review").click()
    page.wait_for_selector("#rv-header", state="visible")
    return True


# ------------------------------------------------------------------------------------------------ helpers
def _wait_header(page, text: str) -> None:
    page.wait_for_function("t => (document.querySelector('#rv-header')?.innerText || '').includes(t)", arg=text)


def _wait_text(page, selector: str, text: str, timeout_ms: int = 30_000) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                           arg=[selector, text], timeout=timeout_ms)


def _wait_video(page) -> None:
    page.wait_for_function(f"({VIDEO}?.readyState || 0) >= 2")


def _shown(page) -> int:
    return int(page.get_attribute("#rv-header .rv-header", "data-review"))


def _times(page) -> list[float]:
    return [float(t) for t in page.get_attribute("#rv-header .rv-header", "data-frames").split()]


def _wait_moved_from(page, review_id: int) -> None:
    page.wait_for_function("id => +(document.querySelector('#rv-header .rv-header')?.dataset.review || 0) "
                           "!== id && !!document.querySelector('#rv-header .rv-header[data-review]')", arg=review_id)


def _wait_time(page, t: float) -> None:
    page.wait_for_function(f"t => Math.abs({VIDEO}.currentTime - t) < 0.002 && {VIDEO}.paused", arg=t)


def _wait_rate(page, rate: float) -> None:
    page.wait_for_function(f"r => {VIDEO}.playbackRate === r", arg=rate)
    assert page.inner_text("#rv-vid-rate") == f"{rate:g}x"


def _focused_in(page, elem_id: str) -> bool:
    return page.evaluate("id => !!document.activeElement?.closest(`#${id}`)", elem_id)


def _value(page, box: int) -> str:
    """The text of the rationale form's ``box``-th box (1: the first dimension)."""
    return page.locator(f"#rv-dim-{box} textarea").input_value()


def _choose(page, elem_id: str, option: str) -> None:
    """Choose ``option`` of the list ``elem_id`` with the mouse (its choice re-opens the queue)."""
    page.click(f"#{elem_id} input")
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_function("([id, v]) => document.querySelector(`#${id} input`).value === v", arg=[elem_id, option])


def _choose_dataset(page, name: str) -> None:
    page.click("#rv-dataset input")
    page.get_by_role("option", name=name).click()
    _wait_header(page, f"{name} › ")


def _chooses_by_keyboard(page, elem_id: str, typed: str, option: str) -> None:
    """Press ``elem_id``'s key: its list has the focus and opens; typing narrows it to ``option`` and Enter chooses
    it."""
    page.keyboard.press(f"Alt+{SHORTCUTS[elem_id].key}")
    assert _focused_in(page, elem_id)
    page.get_by_role("option").first.wait_for()  # the list opened (typing before it has may be lost)
    page.keyboard.type(typed)
    page.get_by_role("option", name=option, exact=True).wait_for()  # the choices, narrowed by what was typed
    page.keyboard.press("Enter")
    page.wait_for_function("([id, v]) => document.querySelector(`#${id} input`).value === v", arg=[elem_id, option])
    page.get_by_role("option").first.wait_for(state="detached")  # chosen: the list closed


def _wait_queue(page, header: str, place: str) -> None:
    """The queue re-opened: ``header`` in the header (an item's id, or the empty filter's words), ``place`` in the
    place line."""
    _wait_header(page, header)
    _wait_text(page, "#rv-place", place)


# ------------------------------------------------------------------------------------------------ checks
def _decides(action: str, typed: str = ""):
    def check(page, db_url):
        _choose_dataset(page, "writes")
        shown = _shown(page)
        if typed:
            page.keyboard.press("Alt+1")
            page.keyboard.type(typed)
        page.keyboard.press(f"Alt+{SHORTCUTS[f'rv-{action}'].key}")
        _wait_moved_from(page, shown)
        item = review.load_item(db_url, shown)
        assert item.status == ("rejected" if action == "reject" else "accepted")
        assert item.edited == bool(typed) and item.version == 2
        if typed:
            assert item.fields["subjects"] == typed
    return check


def _moves_next(page, db_url):
    shown = _shown(page)
    page.keyboard.press("Alt+N")
    _wait_header(page, "clip_0")
    assert _shown(page) != shown and "2 of 3" in page.inner_text("#rv-place")


def _moves_back(page, db_url):
    page.keyboard.press("Alt+N")
    _wait_header(page, "clip_0")
    page.keyboard.press("Alt+P")
    _wait_header(page, "clip_2")
    assert "1 of 3" in page.inner_text("#rv-place")


def _skips_without_saving(page, db_url):
    shown = _shown(page)
    page.keyboard.press("Alt+1")
    page.keyboard.type("typed, then skipped")
    page.keyboard.press("Alt+K")
    _wait_header(page, "clip_0")
    item = review.load_item(db_url, shown)  # Next would have saved a draft; Skip saves nothing
    assert (item.status, item.version, item.fields["subjects"] or "") == ("pending", 1, "")


def _jumps(page, db_url):
    page.keyboard.press("Alt+J")
    assert _focused_in(page, "rv-jump")
    page.keyboard.type("clip_1")
    page.keyboard.press("Enter")
    _wait_header(page, "clip_1")


def _searches(page, db_url):
    page.keyboard.press("Alt+/")
    assert _focused_in(page, "rv-search")
    page.keyboard.type("terrier")  # only clip_1's suggestion has the word
    page.keyboard.press("Enter")
    _wait_header(page, "clip_1")
    _wait_text(page, "#rv-place", "1 of 1")


def _focuses_box(box: int):
    """Alt+N focuses the N-th box: one of homes' four dimensions; a box its dataset does not have is hidden, and
    its key does nothing (the five-dimension dataset's fifth box: tests/browser/test_dimensions_browser.py)."""
    def check(page, db_url):
        page.keyboard.press("Alt+N")  # clip_0: fields full of the suggestion's text, all of it selected by the key
        _wait_header(page, "clip_0")
        page.keyboard.press(f"Alt+{SHORTCUTS[f'rv-dim-{box}'].key}")
        if box <= 4:
            assert _focused_in(page, f"rv-dim-{box}")
            page.keyboard.type(f"new text {box}")
            assert _value(page, box) == f"new text {box}"
        else:
            assert not page.locator(f"#rv-dim-{box}").is_visible()
            assert page.evaluate("() => !document.activeElement?.closest('textarea, input')")
            assert [_value(page, i) for i in range(1, 5)] == [CLIP_0[d] for d in ("subjects", "attributes",
                                                                                   "actions", "scenes")]
    return check


def _focuses_label(page, db_url):
    page.keyboard.press("Alt+L")
    assert _focused_in(page, "rv-label")
    page.keyboard.type("norm")
    page.get_by_role("option", name="normal", exact=True).wait_for()  # the label's choices, filtered by what was typed
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#rv-label input').value === 'normal'")


def _reverts(page, db_url):
    page.keyboard.press("Alt+N")
    _wait_header(page, "clip_0")
    page.keyboard.press("Alt+1")
    page.keyboard.type("my own words")
    page.keyboard.press("Alt+Z")
    page.wait_for_function("t => document.querySelector('#rv-dim-1 textarea').value === t", arg=CLIP_0["subjects"])
    _wait_text(page, "#rv-diff", "Same text as the suggestion")


def _regenerates(page, db_url):
    page.keyboard.press("Alt+G")
    _wait_text(page, "#rv-job", "regeneration job")
    # the job runs with the suggestion's model (not on this machine, offline): wait for it to end, then check it
    # left the item alone
    page.wait_for_function("() => /job \\d+ (failed|succeeded|cancelled)/.test("
                           "document.querySelector('#rv-job')?.innerText || '')", timeout=240_000)
    assert re.search(r"job \d+ \w+", page.inner_text("#rv-job"))
    assert "clip_2" in page.inner_text("#rv-header")


def _plays_and_pauses(page, db_url):
    page.keyboard.press("Alt+V")
    page.wait_for_function(f"() => !{VIDEO}.paused && {VIDEO}.currentTime > 0")
    page.keyboard.press("Alt+V")
    page.wait_for_function(f"() => {VIDEO}.paused")


def _steps_forward(page, db_url):
    times = _times(page)
    assert len(times) == 8
    for t in times[:3]:
        page.keyboard.press("Alt+.")
        _wait_time(page, t)
    assert page.inner_text("#rv-vid-pos").endswith("frame 3 of 8")
    assert page.locator("#rv-frames .grid-container .thumbnail-item[data-rv-now]").get_attribute(
        "aria-label") == "Thumbnail 3 of 8"


def _steps_back(page, db_url):
    times = _times(page)
    page.locator("#rv-frames .grid-container .thumbnail-item").nth(7).click()  # the last frame
    _wait_time(page, times[7])
    page.keyboard.press("Escape")  # the strip's preview
    for t in (times[6], times[5]):
        page.keyboard.press("Alt+,")
        _wait_time(page, t)
    page.keyboard.press("Alt+V")  # playing on, then back: the frame before where it stopped
    page.wait_for_function(f"t => {VIDEO}.currentTime > t + 0.05", arg=times[5])
    page.keyboard.press("Alt+V")
    page.wait_for_function(f"() => {VIDEO}.paused")
    now = page.evaluate(f"() => {VIDEO}.currentTime")
    page.keyboard.press("Alt+,")
    _wait_time(page, max(t for t in times if t < now - 0.002))


def _faster(page, db_url):
    for rate in [r for r in RATES if r > 1] + [RATES[-1]]:  # up to 4x, and no further
        page.keyboard.press("Alt+]")
        _wait_rate(page, rate)
    page.keyboard.press("Alt+N")  # the next video plays at the speed chosen
    _wait_header(page, "clip_0")
    _wait_video(page)
    _wait_rate(page, 4.0)


def _slower(page, db_url):
    for rate in [r for r in reversed(RATES) if r < 1] + [RATES[0]]:  # down to 0.25x, and no further
        page.keyboard.press("Alt+[")
        _wait_rate(page, rate)


def _normal(page, db_url):
    page.keyboard.press("Alt+]")
    page.keyboard.press("Alt+]")
    _wait_rate(page, 1.5)
    page.keyboard.press("Alt+0")
    _wait_rate(page, 1.0)


def _overlay_hidden(page) -> bool:
    return page.evaluate("() => { const o = document.getElementById('rv-keys-overlay'); return !o || o.hidden; }")


def _helps(page, db_url):
    page.locator("#rv-header").click()  # the cursor outside any field
    page.keyboard.press("?")
    page.wait_for_selector("#rv-keys-overlay:not([hidden])")
    rows = page.eval_on_selector_all("#rv-keys-overlay tr.rv-keys-row",
                                     "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")
    assert rows == [[chord, does] for _tab, _group, chord, does in help_rows()]  # every key, from the one table
    assert page.eval_on_selector_all("#rv-keys-overlay h3", "hs => hs.map(h => h.innerText.trim())") == [
        "Any tab", "Review tab", "Adjudicate tab"]
    page.keyboard.press("Escape")
    assert _overlay_hidden(page)
    page.keyboard.press("?")
    assert not _overlay_hidden(page)
    page.keyboard.press("?")
    assert _overlay_hidden(page)
    page.click("#rv-keys")  # the bar's "Keys ?" button
    assert not _overlay_hidden(page)
    page.keyboard.press("Escape")
    page.keyboard.press("Alt+1")  # typing a question mark in a field types it, and opens nothing
    page.keyboard.type("why?")
    assert _value(page, 1) == "why?" and _overlay_hidden(page)


# ------------------------------------------------------------------------------------------------ Review: filters
def _signs_as_reviewer(page, db_url):
    _choose_dataset(page, "writes")
    shown = _shown(page)
    page.keyboard.press("Alt+W")
    assert _focused_in(page, "rv-reviewer")
    page.keyboard.type("kim")
    page.keyboard.press("Alt+A")
    _wait_moved_from(page, shown)
    item = review.load_item(db_url, shown)
    assert (item.status, item.reviewer) == ("accepted", "kim")


def _chooses_dataset(page, db_url):
    _chooses_by_keyboard(page, "rv-dataset", "writ", "writes")
    _wait_queue(page, "writes › ", "1 of ")


def _filters(elem_id: str, typed: str, option: str, header: str, place: str = ""):
    """A filter's key opens its list; the choice made by keyboard re-opens the queue, narrowed."""
    def check(page, db_url):
        _chooses_by_keyboard(page, elem_id, typed, option)
        _wait_queue(page, header, place)
    return check


def _filters_by_flag(page, db_url):
    flt = review.ReviewFilter(dataset="homes", flag="contradiction")
    (flagged,) = queue_order(db_url, flt)  # clip_0: its conclusion says normal, its label is abnormal
    _chooses_by_keyboard(page, "rv-flag", "contradicts", "conclusion contradicts the label")
    _wait_queue(page, review.load_item(db_url, flagged).external_id, "1 of 1")


def _toggles_parse_failed(page, db_url):
    page.keyboard.press("Alt+1")  # the key toggles the box wherever the cursor is, and leaves the cursor there
    page.keyboard.press("Alt+B")
    page.wait_for_function("() => document.querySelector('#rv-filter-parse input').checked")
    _wait_queue(page, "clip_2", "1 of 1")  # the only suggestion that failed to parse
    assert _focused_in(page, "rv-dim-1")
    page.keyboard.press("Alt+B")
    page.wait_for_function("() => !document.querySelector('#rv-filter-parse input').checked")
    _wait_queue(page, "clip_2", "1 of 3")


def _bulk(kind: str):
    """A bulk key acts on every item of the filter of a dataset of its own, and says how many it changed."""
    def check(page, db_url):
        dataset = f"mass-{kind}"
        _choose_dataset(page, dataset)
        shortcut = SHORTCUTS[f"rv-bulk-{kind}"]
        flt = review.ReviewFilter(dataset=dataset, status="all")
        asked = []

        def answer(yes):
            def handle(dialog):
                asked.append(dialog.message)
                dialog.accept() if yes else dialog.dismiss()
            return handle

        page.once("dialog", answer(False))  # the key asks first; "no" changes nothing
        page.keyboard.press(f"Alt+{shortcut.key}")
        page.wait_for_timeout(700)  # long enough for a bulk event to reach the app, had the key sent one
        assert asked == [shortcut.confirm]
        untouched = [review.load_item(db_url, rid) for rid in queue_order(db_url, flt)]
        assert all(i.status == "pending" and not i.excluded and i.version == 1 for i in untouched)
        page.once("dialog", answer(True))
        page.keyboard.press(f"Alt+{shortcut.key}")
        said = ("accepted 3 untouched items in this filter" if kind == "accept"
                else "excluded 3 items in this filter from training")
        page.get_by_text(said).wait_for()
        assert asked == [shortcut.confirm] * 2
        items = [review.load_item(db_url, rid) for rid in queue_order(db_url, flt)]
        assert len(items) == 3
        if kind == "accept":
            assert all(i.status == "accepted" and not i.excluded for i in items)
        else:
            assert all(i.status == "pending" and i.excluded for i in items)
        assert review.load_item(db_url, review.find_item(db_url, "homes", "clip_2")).version == 1
    return check


# ------------------------------------------------------------------------------------------------ Adjudicate
def _adjudicate(page) -> int:
    """The Adjudicate tab on ``panel``: its first ready item shown; returns its review id."""
    page.get_by_role("tab", name="Adjudicate").click()
    _choose_adj_dataset(page, "panel")
    page.wait_for_function("() => !!document.querySelector('#adj-header .adj-header[data-review]')")
    page.evaluate("() => document.activeElement?.blur?.()")
    return _adj_shown(page)


def _choose_adj_dataset(page, name: str) -> None:
    """Choose the Adjudicate tab's dataset by keyboard: a choice by mouse sends the dataset's input event twice,
    and the second answer, landing while a check works on the item, would put the form back as it opened."""
    page.keyboard.press(f"Alt+{SHORTCUTS['adj-dataset'].key}")
    page.keyboard.type(name)
    page.get_by_role("option", name=name, exact=True).wait_for()
    page.keyboard.press("Enter")
    page.wait_for_function("v => document.querySelector('#adj-dataset input').value === v", arg=name)


def _adj_shown(page) -> int:
    return int(page.get_attribute("#adj-header .adj-header", "data-review"))


def _adj_value(page, box: int) -> str:
    return page.locator(f"#adj-dim-{box} textarea").input_value()


def _wait_adj_moved_from(page, review_id: int) -> None:
    page.wait_for_function("id => +(document.querySelector('#adj-header .adj-header')?.dataset.review || 0) "
                           "!== id && !!document.querySelector('#adj-header .adj-header[data-review]')", arg=review_id)


def _review_untouched(db_url) -> None:
    """The Review tab's item under the Adjudicate tab's (homes clip_2) was not acted on by the same key."""
    item = review.load_item(db_url, review.find_item(db_url, "homes", "clip_2"))
    assert (item.status, item.version) == ("pending", 1)


def _finalises(action: str, who: str = ""):
    def check(page, db_url):
        shown = _adjudicate(page)
        if who:
            page.keyboard.press("Alt+W")
            assert _focused_in(page, "adj-adjudicator")
            page.keyboard.type(who)
        page.keyboard.press(f"Alt+{SHORTCUTS[f'adj-{action}'].key}")
        _wait_adj_moved_from(page, shown)
        item = review.load_item(db_url, shown)
        assert item.status == ("rejected" if action == "reject" else "accepted")
        assert item.reviewer == (who or "anonymous")
        _review_untouched(db_url)
    return check


def _adj_moves_next(page, db_url):
    shown = _adjudicate(page)
    assert "1 of " in page.inner_text("#adj-place")
    page.keyboard.press("Alt+N")
    _wait_adj_moved_from(page, shown)
    _wait_text(page, "#adj-place", "2 of ")
    _review_untouched(db_url)
    assert _shown(page) == review.find_item(db_url, "homes", "clip_2")  # the Review tab stayed on its item


def _adj_moves_back(page, db_url):
    shown = _adjudicate(page)
    page.keyboard.press("Alt+N")
    _wait_adj_moved_from(page, shown)
    page.keyboard.press("Alt+P")
    page.wait_for_function("id => +(document.querySelector('#adj-header .adj-header')?.dataset.review) === id",
                           arg=shown)
    _wait_text(page, "#adj-place", "1 of ")


def _adj_chooses_dataset(page, db_url):
    page.get_by_role("tab", name="Adjudicate").click()
    _wait_text(page, "#adj-header", "Nothing to adjudicate")  # homes asks for one review per item
    _chooses_by_keyboard(page, "adj-dataset", "pan", "panel")
    page.wait_for_function("() => !!document.querySelector('#adj-header .adj-header[data-review]')")
    _wait_text(page, "#adj-place", "1 of ")


def _responses(db_url, review_id: int) -> dict[str, dict]:
    return {r["reviewer"]: r["rationale"] for r in adjudication.load(db_url, review_id).responses}


def _uses(page, db_url):
    """Use, with what the lists show when an item opens: every field of the first response."""
    shown = _adjudicate(page)
    first = page.input_value("#adj-source input")
    assert first in REVIEWERS and page.input_value("#adj-dimension input") == "all fields"
    page.keyboard.press("Alt+U")
    text = _responses(db_url, shown)[first]
    page.wait_for_function("t => document.querySelector('#adj-dim-1 textarea').value === t", arg=text["subjects"])
    assert _adj_value(page, 4) == text["scenes"]


def _adj_chooses_source(page, db_url):
    shown = _adjudicate(page)
    other = next(r for r in REVIEWERS if r != page.input_value("#adj-source input"))
    _chooses_by_keyboard(page, "adj-source", other, other)
    page.keyboard.press("Alt+U")  # the response chosen is the one used
    page.wait_for_function("t => document.querySelector('#adj-dim-1 textarea').value === t",
                           arg=_responses(db_url, shown)[other]["subjects"])


def _adj_chooses_field(page, db_url):
    shown = _adjudicate(page)
    before = [_adj_value(page, i) for i in range(1, 5)]
    _chooses_by_keyboard(page, "adj-dimension", "scen", "scenes")
    page.keyboard.press("Alt+U")  # only the field chosen is taken
    text = _responses(db_url, shown)[page.input_value("#adj-source input")]
    page.wait_for_function("t => document.querySelector('#adj-dim-4 textarea').value === t", arg=text["scenes"])
    assert [_adj_value(page, i) for i in range(1, 4)] == before[:3]


def _adj_focuses_box(box: int):
    """Alt+N focuses the N-th final box in the Adjudicate tab: one of panel's four dimensions, its text selected so
    typing replaces it (the text Use put there). A box no dataset there has is hidden (as a fresh page's tab shows it: homes, nothing to
    adjudicate), and its key does nothing, in this tab and in the hidden Review tab."""
    def check(page, db_url):
        if box <= 4:
            shown = _adjudicate(page)
            page.keyboard.press("Alt+U")  # the first response's text in every box (the first item's own is empty)
            used = _responses(db_url, shown)[page.input_value("#adj-source input")][FOUR[box - 1]]
            page.wait_for_function("([b, t]) => document.querySelector(`#adj-dim-${b} textarea`).value === t",
                                   arg=[box, used])
            page.keyboard.press(f"Alt+{SHORTCUTS[f'adj-dim-{box}'].key}")
            assert _focused_in(page, f"adj-dim-{box}")
            page.keyboard.type(f"final text {box}")
            assert _adj_value(page, box) == f"final text {box}"
        else:
            page.get_by_role("tab", name="Adjudicate").click()
            _wait_text(page, "#adj-header", "Nothing to adjudicate")
            page.keyboard.press(f"Alt+{SHORTCUTS[f'adj-dim-{box}'].key}")
            assert not page.locator(f"#adj-dim-{box}").is_visible()
            assert page.locator("#adj-dim-1").is_visible()
            assert page.evaluate("() => !document.activeElement?.closest('textarea, input')")
    return check


def _adj_focuses_label(page, db_url):
    _adjudicate(page)
    _chooses_by_keyboard(page, "adj-label", "norm", "normal")


CHECKS = {
    "rv-keys": _helps,
    "rv-accept": _decides("accept"), "rv-save": _decides("save", typed="a cat, typed"),
    "rv-reject": _decides("reject"), "rv-reviewer": _signs_as_reviewer,
    "rv-next": _moves_next, "rv-prev": _moves_back, "rv-skip": _skips_without_saving, "rv-jump": _jumps,
    **{f"rv-dim-{box}": _focuses_box(box) for box in range(1, MAX_DIMENSIONS + 1)},
    "rv-label": _focuses_label, "rv-revert": _reverts, "rv-regen": _regenerates, "rv-vid-play": _plays_and_pauses,
    "rv-vid-prev": _steps_back, "rv-vid-next": _steps_forward, "rv-vid-slower": _slower, "rv-vid-faster": _faster,
    "rv-vid-normal": _normal,
    "rv-dataset": _chooses_dataset,
    "rv-filter-status": _filters("rv-filter-status", "acc", "accepted", "Nothing to review in this filter"),
    "rv-filter-label": _filters("rv-filter-label", "norm", "normal", "clip_1", "1 of 1"),
    "rv-filter-split": _filters("rv-filter-split", "va", "val", "Nothing to review in this filter"),
    "rv-filter-edited": _filters("rv-filter-edited", "edi", "edited", "Nothing to review in this filter"),
    "rv-filter-parse": _toggles_parse_failed, "rv-flag": _filters_by_flag, "rv-search": _searches,
    "rv-bulk-accept": _bulk("accept"), "rv-bulk-exclude": _bulk("exclude"),
    "adj-accept": _finalises("accept"), "adj-reject": _finalises("reject"),
    "adj-adjudicator": _finalises("accept", who="cara"), "adj-next": _adj_moves_next, "adj-prev": _adj_moves_back,
    "adj-dataset": _adj_chooses_dataset, "adj-source": _adj_chooses_source, "adj-dimension": _adj_chooses_field,
    "adj-use": _uses, **{f"adj-dim-{box}": _adj_focuses_box(box) for box in range(1, MAX_DIMENSIONS + 1)},
    "adj-label": _adj_focuses_label,
}


@pytest.mark.parametrize("elem_id", list(CHECKS))
def test_shortcut(elem_id, page, app):
    CHECKS[elem_id](page, app[1])


def test_clicking_a_frame_of_the_strip_seeks_the_player(page):
    times = _times(page)
    page.locator("#rv-frames .grid-container .thumbnail-item").nth(4).click()
    _wait_time(page, times[4])
    assert page.inner_text("#rv-vid-pos").endswith("frame 5 of 8")
    page.locator("#rv-frames .thumbnail-small").nth(1).click()  # the preview's own strip seeks as well
    _wait_time(page, times[1])
    page.keyboard.press("ArrowRight")  # and so does moving through the preview with the arrows
    _wait_time(page, times[2])

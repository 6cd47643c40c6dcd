"""Every keyboard shortcut of the Review tab, pressed in a real browser, with its effect checked (issue #15, part 5).

``CHECKS`` holds one check per entry of ``ui.keys.SHORTCUTS``; ``tests/ui/test_keys.py`` fails when a shortcut has
none. One app serves two datasets: ``homes`` (three clips; no check saves anything in it, so its queue is always
clip_2, clip_0, clip_1) and ``writes`` (six clips; the accept / save / reject checks act on whichever item it shows
first, so each decides on an item of its own).

The checks share one browser page (a page load costs seconds; a check, about one). Before each check ``_reset`` puts
back everything a check may change, and proves it did: the browser's store (typing drafts, the chosen speed), the
help overlay, the strip's preview, the focus, the video (paused at 0 s, 1x), and the queue, re-opened on ``homes``
(the re-open saves nothing, unlike Next / Previous / Jump) with clip_2's stored text in the fields. So each check
starts where a fresh page would, in any order and alone. Should a reset fail (a check left the page broken), the
next check gets a fresh page instead.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from rbft_core.models.prompts import MAX_DIMENSIONS
from rbft_core.review import workspace as review
from tests.review_world import SUGGESTIONS, make_review_world, start_app, stop_app
from ui.keys import SHORTCUTS, help_rows
from ui.player import RATES

pytestmark = pytest.mark.browser

VIDEO = "document.querySelector('#rv-video video')"
SEARCH = "#rv-search :is(textarea, input)"
JUMP = "#rv-jump :is(textarea, input)"
CLIP_0 = dict((ext, fields) for ext, _label, fields in SUGGESTIONS)["clip_0"]


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
            built = pool.submit(lambda: (make_review_world(db_url, root / "homes"),
                                         make_review_world(db_url, root / "writes", dataset="writes", extra=3)))
            proc, url = start_app(db_url, root / "data")
            try:
                homes, _writes = built.result()
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
    on_homes = page.evaluate("""() => {
        localStorage.clear();  // the typing keeper's drafts (ui/typing_keeper.py) and the chosen speed (ui/player.py)
        const overlay = document.getElementById('rv-keys-overlay');
        if (overlay) overlay.hidden = true;
        document.querySelector("#rv-frames .preview button[aria-label='Close']")?.click();  // the strip's preview
        document.activeElement?.blur?.();
        const area = document.querySelector('#rv-dim-1 textarea');
        area.value = '(reset)';
        area.dispatchEvent(new Event('input', {bubbles: true}));
        return document.querySelector('#rv-dataset input').value === 'homes';
    }""")
    page.fill(JUMP, "")
    page.fill(SEARCH, "")
    if on_homes:
        page.press(SEARCH, "Enter")  # re-opens the queue at its first item; saves nothing (Next / Jump would)
    else:
        _choose_dataset(page, "homes")  # so does choosing a dataset
    page.wait_for_function("""f => {
        const h = document.querySelector('#rv-header .rv-header[data-review]');
        const value = (i) => document.querySelector(`#rv-dim-${i + 1} textarea`)?.value;
        return h && +h.dataset.review === f.review && h.dataset.dataset === 'homes'
            && f.fields.every((t, i) => value(i) === t)
            && document.querySelector('#rv-label input')?.value === f.label
            && (document.querySelector('#rv-place')?.innerText || '').includes('1 of 3')
            && !document.querySelector('#rv-frames .preview');
    }""", arg=first)
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


def _choose_dataset(page, name: str) -> None:
    page.click("#rv-dataset input")
    page.get_by_role("option", name=name).click()
    _wait_header(page, f"{name} › ")


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
    assert rows == [[chord, does] for _group, chord, does in help_rows()]  # every key, from the one table
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


CHECKS = {
    "rv-accept": _decides("accept"), "rv-save": _decides("save", typed="a cat, typed"),
    "rv-reject": _decides("reject"), "rv-next": _moves_next, "rv-prev": _moves_back, "rv-skip": _skips_without_saving,
    "rv-jump": _jumps, "rv-search": _searches,
    **{f"rv-dim-{box}": _focuses_box(box) for box in range(1, MAX_DIMENSIONS + 1)},
    "rv-label": _focuses_label, "rv-revert": _reverts, "rv-regen": _regenerates, "rv-vid-play": _plays_and_pauses,
    "rv-vid-prev": _steps_back, "rv-vid-next": _steps_forward, "rv-vid-slower": _slower, "rv-vid-faster": _faster,
    "rv-vid-normal": _normal, "rv-keys": _helps,
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

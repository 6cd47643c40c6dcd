"""The Review tab's player controls: speed 0.25x to 4x, a step to the previous / next frame the model sees, and the
frame strip as a seek bar. All of it runs in the browser (no server round trip per key press).

The bar below the video is plain HTML (``player_bar_html``): buttons whose ids are shortcuts in ``ui.keys``
(Alt+V, Alt+, Alt+. Alt+[ Alt+] Alt+0), so a key and a click do the same thing. The times of the sampled frames come
with the item, exact, in the header's ``data-frames`` (``ui.review_render.header_html``); a step seeks the player to
the next or previous one and pauses it. Clicking a frame of the strip (or moving through its preview) seeks the
player to that frame. The bar shows the speed and where the player is against the sampled frames, and the strip
outlines the frame shown. The speed is kept in the browser (localStorage) and applied to every video opened.
"""

from __future__ import annotations

import json
from html import escape

from ui.keys import HELP_ID, SHORTCUTS, label

__all__ = ["RATES", "player_bar_html", "player_js", "PLAYER_CSS"]

RATES = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)  # the speeds Alt+[ / Alt+] go through
SEEK_PAST_S = 0.0001  # a seek lands this far past a frame's time, so the browser shows that frame, not the one before
SAME_S = 0.002  # a player time within this of a sampled frame's time is on that frame

_BUTTONS = (("rv-vid-prev", "◀ frame"), ("rv-vid-play", "Play / pause"), ("rv-vid-next", "frame ▶"),
            ("rv-vid-slower", "Slower"), ("rv-vid-faster", "Faster"), ("rv-vid-normal", "1x"))


def player_bar_html() -> str:
    """The bar under the video: a button per control (its key in its tooltip), the speed and the position."""
    buttons = "".join(f'<button type="button" id="{elem_id}" class="rv-vid-btn" title="{escape(label(text, elem_id))}">'
                      f'{escape(text)} <kbd>{escape(SHORTCUTS[elem_id].chord)}</kbd></button>'
                      for elem_id, text in _BUTTONS)
    return (f'<div class="rv-vidbar">{buttons}<span class="rv-vid-rate">speed <b id="rv-vid-rate">1x</b></span>'
            f'<span id="rv-vid-pos" class="rv-vid-pos"></span>'
            f'<button type="button" id="{HELP_ID}" class="rv-vid-btn" title="every key (?)">Keys <kbd>?</kbd></button>'
            '</div>')


_JS = """
() => {
  const RATES = %(rates)s, PAST = %(past)s, SAME = %(same)s, STORE = "rbft-video-rate";
  const video = () => document.querySelector("#rv-video video");
  const times = () => {
    const h = document.querySelector("#rv-header .rv-header[data-frames]");
    return h ? h.dataset.frames.split(" ").filter(Boolean).map(Number) : [];
  };
  const steps = () => [...new Set(times())].sort((a, b) => a - b);
  const chosen = () => { const r = parseFloat(localStorage.getItem(STORE)); return RATES.includes(r) ? r : 1; };
  const fmt = (r) => `${+r.toFixed(2)}x`;
  const thumbs = () => [...document.querySelectorAll("#rv-frames .thumbnail-item")];  // the grid's and the preview's
  const show = () => {
    const v = video(), rate = document.getElementById("rv-vid-rate"), pos = document.getElementById("rv-vid-pos");
    if (rate) rate.textContent = fmt(v ? v.playbackRate : chosen());
    const ts = times();
    let on = -1, before = -1;
    if (v) ts.forEach((t, i) => {
      if (Math.abs(t - v.currentTime) < SAME && on < 0) on = i;
      if (t <= v.currentTime + SAME) before = i;
    });
    if (pos) {
      const now = v ? `${v.currentTime.toFixed(3)} s` : "no video";
      pos.textContent = !ts.length ? now : on >= 0 ? `${now} · frame ${on + 1} of ${ts.length}` :
                        before >= 0 ? `${now} · after frame ${before + 1} of ${ts.length}` :
                        `${now} · before frame 1 of ${ts.length}`;
    }
    thumbs().forEach((b) => b.toggleAttribute("data-rv-now", index(b) === on));
  };
  const setRate = (r) => {
    localStorage.setItem(STORE, String(r));
    const v = video();
    if (v) { v.defaultPlaybackRate = r; v.playbackRate = r; }
    show();
  };
  const seek = (t) => {
    const v = video();
    if (!v || !Number.isFinite(t)) return;
    v.pause();
    // Not to where it already is: a strip click seeks, then the preview's selection follows to the same frame, and
    // Chromium takes a second seek into the last frame past it, to the end of the video (the step back then stays).
    if (Math.abs(v.currentTime - (t + PAST)) > 1e-5) v.currentTime = t + PAST;
    show();
  };
  const step = (direction) => {
    const v = video();
    if (!v) return;
    const ts = steps(), now = v.currentTime;
    seek(direction > 0 ? ts.find(t => t > now + SAME) : ts.reverse().find(t => t < now - SAME));
  };
  const faster = (direction) => {
    const r = video() ? video().playbackRate : chosen();
    const next = direction > 0 ? RATES.find(x => x > r + 1e-9) : [...RATES].reverse().find(x => x < r - 1e-9);
    setRate(next === undefined ? (direction > 0 ? RATES[RATES.length - 1] : RATES[0]) : next);
  };
  const index = (thumb) => {
    const m = /(\\d+) of \\d+/.exec(thumb.getAttribute("aria-label") || "");
    return m ? +m[1] - 1 : [...thumb.parentNode.querySelectorAll(".thumbnail-item")].indexOf(thumb);
  };
  const ACTIONS = {"rv-vid-prev": () => step(-1), "rv-vid-next": () => step(1), "rv-vid-slower": () => faster(-1),
                   "rv-vid-faster": () => faster(1), "rv-vid-normal": () => setRate(1),
                   "rv-vid-play": () => { const v = video(); if (v) { if (v.paused) v.play(); else v.pause(); } }};
  document.addEventListener("click", (event) => {
    const hit = event.target.closest && event.target.closest(".rv-vid-btn");
    if (hit && ACTIONS[hit.id]) { ACTIONS[hit.id](); return; }
    if (!event.target.closest || !event.target.closest("#rv-frames")) return;
    const thumb = event.target.closest(".thumbnail-item");
    if (thumb) seek(times()[index(thumb)]);
    setTimeout(follow, 50);  // a click on the preview's large image moves its selection
  }, true);
  const follow = () => {
    const picked = document.querySelector("#rv-frames .thumbnail-item.selected");
    if (picked) seek(times()[index(picked)]);
  };
  document.addEventListener("keydown", (event) => {  // the strip's preview moves with the arrow keys
    if (event.key.startsWith("Arrow") && event.target.closest && event.target.closest("#rv-frames")) {
      setTimeout(follow, 50);
    }
  }, true);
  const isPlayer = (event) => event.target.matches && event.target.matches("#rv-video video");
  document.addEventListener("loadedmetadata", (event) => {  // every item brings a new video: keep the speed
    if (!isPlayer(event)) return;
    event.target.defaultPlaybackRate = chosen();
    event.target.playbackRate = chosen();
    show();
  }, true);
  for (const type of ["ratechange", "timeupdate", "seeked", "pause", "emptied"]) {
    document.addEventListener(type, (event) => { if (isPlayer(event)) show(); }, true);
  }
  setInterval(show, 1000);  // a new item's header (frame times) without a new video
}
"""


def player_js() -> str:
    """The script (a JS function, for ``launch(js=...)``) behind the bar's buttons and the strip's clicks."""
    return _JS % {"rates": json.dumps(list(RATES)), "past": json.dumps(SEEK_PAST_S), "same": json.dumps(SAME_S)}


PLAYER_CSS = """
.rv-vidbar { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; font-size: 13px; }
.rv-vidbar .rv-vid-btn { padding: 1px 6px; border: 1px solid var(--border-color-primary, #999); border-radius: 4px;
                         background: var(--button-secondary-background-fill, #f3f4f6); font-size: 13px;
                         font-weight: normal; line-height: 1.5; }
.rv-vidbar kbd { font-family: monospace; font-size: 0.85em; opacity: 0.7; }
.rv-vidbar .rv-vid-rate, .rv-vidbar .rv-vid-pos { margin: 0 6px; }
#rv-frames .thumbnail-item[data-rv-now] { outline: 3px solid #2563eb; outline-offset: -3px; }
"""

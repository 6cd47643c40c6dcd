"""Unsaved typing survives a reload, a closed tab and an app restart: the browser keeps it in localStorage.

The Review tab's header carries ``data-review`` / ``data-version`` / ``data-video`` / ``data-dataset`` of the item
shown and ``data-dims``, its dataset's dimension names in the order of the form's boxes (``rv-dim-1`` ...;
``ui.review_render.header_html``). The script below:

- on every keystroke in a rationale box, stores the text of every dimension, by name, under
  ``rbft-typing:<path>:<review id>`` with the version it was typed against;
- when the server answers a save or a move (accept, save edit, reject, next, previous, jump) with another item, drops
  the draft of the item left: the server saved it (or kept it as a refused revision in the history). Skip saves
  nothing, so its draft stays; a request that never got an answer (app down) drops nothing;
- when an item is shown whose fields differ from its draft: typed against the version shown, the text is put back
  into the fields (an ``input`` event, so Gradio sees it) and a note says so; typed against an older version
  (someone saved since), the note offers it instead of putting it over the newer text;
- lists the drafts of other items of the dataset, each with a button that opens it (through Jump).

Nothing is sent anywhere; the store holds at most ``MAX_DRAFTS`` items (oldest dropped). The label choice is not
kept (one click to redo); the text of every dimension is.
"""

from __future__ import annotations

import json

from rbft_core.models.prompts import MAX_DIMENSIONS
from ui.review_forms import box_id

__all__ = ["typing_keeper_js", "KEPT_CSS", "MAX_DRAFTS", "SAVING_BUTTONS"]

MAX_DRAFTS = 200
SAVING_BUTTONS = ("rv-accept", "rv-save", "rv-reject", "rv-next", "rv-prev")  # each saves (or keeps) the typed text

_JS = """
() => {
  const BOXES = %(boxes)s, SAVING = %(saving)s, MAX = %(max)d;
  const PREFIX = "rbft-typing:" + location.pathname + ":";
  const header = () => document.querySelector("#rv-header .rv-header[data-review]");
  const dims = () => { const h = header(); return h ? (h.dataset.dims || "").split(" ").filter(Boolean) : []; };
  const field = (i) => document.querySelector(`#${BOXES[i]} textarea`);
  const read = () => Object.fromEntries(dims().map((d, i) => [d, (field(i) || {}).value || ""]));
  const same = (a, b) => dims().every(d => ((a || {})[d] || "").trim() === ((b || {})[d] || "").trim());
  const opened = () => {
    const h = header();
    return h ? {review: h.dataset.review, version: +h.dataset.version, video: h.dataset.video,
                dataset: h.dataset.dataset} : null;
  };
  const load = (id) => { try { return JSON.parse(localStorage.getItem(PREFIX + id)); } catch (e) { return null; } };
  const drop = (id) => localStorage.removeItem(PREFIX + id);
  const all = () => Object.keys(localStorage).filter(k => k.startsWith(PREFIX))
      .map(k => ({id: k.slice(PREFIX.length), ...(load(k.slice(PREFIX.length)) || {})}));
  const keep = (o) => {
    localStorage.setItem(PREFIX + o.review, JSON.stringify({version: o.version, video: o.video, dataset: o.dataset,
                                                           fields: read(), at: Date.now()}));
    const drafts = all().sort((a, b) => (b.at || 0) - (a.at || 0));
    drafts.slice(MAX).forEach(d => drop(d.id));
  };
  const put = (fields) => dims().forEach((d, i) => {
    const area = field(i);
    if (!area) return;
    area.value = fields[d] || "";
    area.dispatchEvent(new Event("input", {bubbles: true}));
  });
  const note = () => {
    let box = document.getElementById("rv-kept");
    const status = document.getElementById("rv-status");
    if (!box && status) {
      box = document.createElement("div");
      box.id = "rv-kept";
      box.className = "rv-kept";
      status.parentNode.insertBefore(box, status);
    }
    return box;
  };
  const clock = (ms) => new Date(ms).toLocaleTimeString();
  const button = (text, act) => {
    const b = document.createElement("button");
    b.type = "button"; b.className = "rv-kept-btn"; b.textContent = text; b.onclick = act;
    return b;
  };
  const show = (o) => {
    const box = note();
    if (!box) return;
    box.replaceChildren();
    const add = (text, ...buttons) => {
      const line = document.createElement("div");
      line.textContent = text + " ";
      buttons.forEach(b => line.appendChild(b));
      box.appendChild(line);
    };
    const here = o && load(o.review);
    if (here && same(here.fields, read()) && here.version !== o.version) drop(o.review);  // it was saved
    else if (here && !same(here.fields, read())) {
      if (here.version === o.version) {
        const served = read();
        put(here.fields);
        add(`Put back what you typed here at ${clock(here.at)} and had not saved (kept in this browser). ` +
            "Save or move on to keep it.", button("Discard it", () => { drop(o.review); put(served); show(o); }));
      } else {
        add(`You typed into this item at ${clock(here.at)} (version ${here.version}) and did not save; it was saved ` +
            `since as version ${o.version}, shown here.`,
            button("Put my typing back", () => { put(here.fields); keep(o); show(o); }),
            button("Discard it", () => { drop(o.review); show(o); }));
      }
    }
    const others = all().filter(d => o && d.id !== o.review && d.dataset === o.dataset).slice(0, 3);
    others.forEach(d => add(`Unsaved typing in video ${d.video} (${clock(d.at)}).`, button("Open it", () => {
      const jump = document.querySelector("#rv-jump textarea, #rv-jump input");
      if (!jump) return;
      jump.value = d.video;
      jump.dispatchEvent(new Event("input", {bubbles: true}));
      for (const type of ["keydown", "keypress"]) {  // Gradio submits a textbox on keypress Enter
        jump.dispatchEvent(new KeyboardEvent(type, {key: "Enter", code: "Enter", keyCode: 13, bubbles: true}));
      }
    })));
    box.style.display = box.childElementCount ? "" : "none";
  };
  let shown = null, leaving = null;
  document.addEventListener("input", (event) => {
    if (!event.isTrusted || !event.target.closest || !event.target.closest(BOXES.map(b => `#${b}`).join(","))) return;
    const o = opened();
    leaving = null;  // typing again after a save that got no answer: the next save click sets it again
    if (o) keep(o);
  }, true);
  document.addEventListener("click", (event) => {
    if (event.target.closest && event.target.closest("#rv-revert") && shown) drop(shown.review);  // model text back
    const hit = event.target.closest && event.target.closest(SAVING.map(id => `#${id}`).join(","));
    if (hit && shown) leaving = shown.review;
    if (event.target.closest && event.target.closest("#rv-skip")) leaving = null;  // skip saves nothing
  }, true);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.closest && event.target.closest("#rv-jump") && shown) leaving = shown.review;
  }, true);
  setInterval(() => {
    const o = opened();
    const key = o ? `${o.review}@${o.version}` : "";
    if (key === (shown ? `${shown.review}@${shown.version}` : "")) return;
    if (leaving && o && o.review !== leaving) drop(leaving);  // the server answered the save / move
    leaving = null;
    shown = o;
    setTimeout(() => show(opened()), 150);  // the fields of the same response land in the same tick
  }, 300);
}
"""


def typing_keeper_js() -> str:
    """The script (a JS function, for ``launch(js=...)``) that keeps unsaved typing in the browser."""
    boxes = [box_id("rv", i) for i in range(MAX_DIMENSIONS)]
    return _JS % {"boxes": json.dumps(boxes), "saving": json.dumps(list(SAVING_BUTTONS)),
                  "max": MAX_DRAFTS}


KEPT_CSS = """
#rv-kept { border-left: 3px solid #d97706; padding: 4px 8px; margin: 4px 0; font-size: 0.9em; }
#rv-kept .rv-kept-btn { margin-left: 6px; padding: 0 8px; border: 1px solid #999; border-radius: 4px; }
"""

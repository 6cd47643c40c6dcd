"""Keyboard shortcuts: one table (``SHORTCUTS``) gives every key, what it does and the element it acts on.

Everything else is made from the table: the captions of the buttons ("Accept as is (Alt+A)"), the script that
dispatches the keys, the help overlay that ``?`` opens (``help_rows``), and the README's list (``markdown_table``;
``tests/ui/test_keys.py`` checks that it matches).

Alt+key clicks a button, toggles a checkbox, or focuses a field or a list (a list opens its choices on focus: type
to narrow them, Enter chooses), found by its elem_id. A key may act in several tabs: each tab's element is an entry
of its own (``Shortcut.tab``; Alt+A is ``rv-accept`` in the Review tab and ``adj-accept`` in the Adjudicate tab),
and the script acts on the first of them that is visible, which is the tab shown. The browser side is one small
script passed to ``launch(js=...)`` (Gradio 6 takes js/css there). It listens on the document in the capture phase,
so an Alt shortcut works while the cursor is in a text field (Alt+letter types nothing there). ``event.code`` is
used (not ``event.key``) so Alt+letter also works on layouts where Alt composes characters: keys are named by their
place on a US keyboard. A key without Alt (``?``) types a character, so it never fires while the cursor is in a text
field. Esc closes the overlay, which lists the keys by tab, then group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from rbft_core.models.prompts import MAX_DIMENSIONS

__all__ = ["Shortcut", "SHORTCUTS", "HELP_ID", "ANY_TAB", "shortcut_js", "label", "help_rows", "markdown_table",
           "KEYS_CSS"]


@dataclass(frozen=True)
class Shortcut:
    """One key: ``key`` as printed on a US keyboard, pressed with Alt unless ``alt`` is False; ``tab`` is the tab
    whose element it acts on (``ANY_TAB``: every tab's)."""

    key: str
    does: str
    group: str
    alt: bool = True
    tab: str = "Review"
    confirm: str = ""  # a question the key asks first (a key pressed by mistake must not change a whole filter)

    @property
    def chord(self) -> str:
        return f"Alt+{self.key}" if self.alt else self.key

    @property
    def code(self) -> str:
        """``KeyboardEvent.code`` of the key (the physical key, whatever the layout)."""
        if self.key.isdigit():
            return f"Digit{self.key}"
        if self.key.isalpha():
            return f"Key{self.key}"
        return _PUNCTUATION[self.key]


_PUNCTUATION = {",": "Comma", ".": "Period", "[": "BracketLeft", "]": "BracketRight", "/": "Slash", "?": "Slash"}
HELP_ID = "rv-keys"  # the "Keys ?" button of the player bar (ui/player.py); ``?`` opens the overlay from any tab
ANY_TAB = "Any tab"
_ORDINAL = {1: "1st", 2: "2nd", 3: "3rd"}
_DEFAULT_DIMS = {1: "subjects", 2: "attributes", 3: "actions", 4: "scenes"}


def _dimension_keys(prefix: str, does: str, tab: str) -> dict[str, Shortcut]:
    """Alt+1 ... Alt+8: the rationale form's boxes (``ui.review_forms.box_id``); as many show as the item's dataset
    has dimensions, and a hidden box's key does nothing. ``does`` names the box: "{} dimension" is "1st dimension"."""
    keys = {}
    for i in range(1, MAX_DIMENSIONS + 1):
        which = f"{_DEFAULT_DIMS[i]} by default" if i in _DEFAULT_DIMS else "where the dataset has one"
        keys[f"{prefix}-dim-{i}"] = Shortcut(str(i), f"{does.format(_ORDINAL.get(i, f'{i}th'))} ({which})", "Edit",
                                             tab=tab)
    return keys


# elem_id -> shortcut, in the order the help overlay lists them (by tab, then group). Within a tab no two share a
# key; across tabs a key means the same where it can (Alt+A decides, Alt+N moves on, Alt+1 edits the first box) and
# acts on the element of the tab shown. Avoid Alt+D/E/F (browser menus), arrows (history navigation) and Alt+Space
# (the window menu).
SHORTCUTS: dict[str, Shortcut] = {
    HELP_ID: Shortcut("?", "show or hide this list (Esc hides it)", "Help", alt=False, tab=ANY_TAB),
    # Review tab
    "rv-accept": Shortcut("A", "accept the suggestion as is, open the next item", "Decide"),
    "rv-save": Shortcut("S", "save the edited text, open the next item", "Decide"),
    "rv-reject": Shortcut("R", "reject the rationale, open the next item", "Decide"),
    "rv-reviewer": Shortcut("W", "your name, which a save records (when not signed in)", "Decide"),
    "rv-next": Shortcut("N", "next item (saves a draft if the text changed)", "Move"),
    "rv-prev": Shortcut("P", "previous item (saves a draft if the text changed)", "Move"),
    "rv-skip": Shortcut("K", "skip to the next item, leaving this one as stored", "Move"),
    "rv-jump": Shortcut("J", "jump to a video id (type it, then Enter)", "Move"),
    **_dimension_keys("rv", "edit the {} dimension", "Review"),
    "rv-label": Shortcut("L", "choose the label", "Edit"),
    "rv-revert": Shortcut("Z", "put the suggestion's text back into the fields", "Edit"),
    "rv-regen": Shortcut("G", "regenerate this rationale with the model (a job)", "Edit"),
    "rv-vid-play": Shortcut("V", "play / pause the video", "Video"),
    "rv-vid-prev": Shortcut(",", "previous frame the model sees (pauses)", "Video"),
    "rv-vid-next": Shortcut(".", "next frame the model sees (pauses)", "Video"),
    "rv-vid-slower": Shortcut("[", "slower (down to 0.25x)", "Video"),
    "rv-vid-faster": Shortcut("]", "faster (up to 4x)", "Video"),
    "rv-vid-normal": Shortcut("0", "normal speed (1x)", "Video"),
    # the queue's filters: a list opens on its key (type to narrow it, Enter chooses); choosing re-opens the queue
    "rv-dataset": Shortcut("T", "choose the dataset", "Filter"),
    "rv-filter-status": Shortcut("U", "filter by status (todo, draft, accepted ...)", "Filter"),
    "rv-filter-label": Shortcut("C", "filter by class (the label)", "Filter"),
    "rv-filter-split": Shortcut("I", "filter by split", "Filter"),
    "rv-filter-edited": Shortcut("M", "filter by modified: edited or untouched", "Filter"),
    "rv-filter-parse": Shortcut("B", "only broken suggestions (parse failed): on / off", "Filter"),
    "rv-flag": Shortcut("Q", "filter by the quality checks' flag", "Filter"),
    "rv-search": Shortcut("/", "search the queue (type words, then Enter)", "Filter"),
    "rv-bulk-accept": Shortcut("Y", "accept every untouched item in the filter (asks first)", "Bulk",
                               confirm="Accept every untouched item in this filter?"),
    "rv-bulk-exclude": Shortcut("X", "exclude every item in the filter from training (asks first)", "Bulk",
                                confirm="Exclude every item in this filter from training?"),
    # Adjudicate tab
    "adj-accept": Shortcut("A", "finalise: the text in the form trains, open the next item", "Decide",
                           tab="Adjudicate"),
    "adj-reject": Shortcut("R", "reject the item (none of its text trains), open the next", "Decide",
                           tab="Adjudicate"),
    "adj-adjudicator": Shortcut("W", "your name, which a finalise records (when not signed in)",
                                "Decide", tab="Adjudicate"),
    "adj-next": Shortcut("N", "next item ready to adjudicate", "Move", tab="Adjudicate"),
    "adj-prev": Shortcut("P", "previous item ready to adjudicate", "Move", tab="Adjudicate"),
    "adj-dataset": Shortcut("T", "choose the dataset", "Move", tab="Adjudicate"),
    "adj-source": Shortcut("O", "start from: a response or the suggestion", "Pick", tab="Adjudicate"),
    "adj-dimension": Shortcut("I", "the field to take from it (all fields, or one)", "Pick", tab="Adjudicate"),
    "adj-use": Shortcut("U", "use it: put its text into the final form", "Pick", tab="Adjudicate"),
    **_dimension_keys("adj", "edit the {} dimension's final text", "Adjudicate"),
    "adj-label": Shortcut("L", "choose the final label", "Edit", tab="Adjudicate"),
}


def label(text: str, elem_id: str) -> str:
    """A caption with its shortcut, e.g. "Accept as is (Alt+A)"."""
    return f"{text} ({SHORTCUTS[elem_id].chord})"


def help_rows() -> list[tuple[str, str, str, str]]:
    """(tab, group, key, what it does) of every shortcut, in the table's order: the overlay's and the README's rows."""
    return [(s.tab, s.group, s.chord, s.does) for s in SHORTCUTS.values()]


def markdown_table() -> str:
    """The README's list of keys (``python -c "from ui.keys import markdown_table; print(markdown_table())"``): a
    tab and a group are named on their first row only."""
    lines, last = ["| tab | group | key | action |", "|---|---|---|---|"], ("", "")
    for tab, group, chord, does in help_rows():
        lines.append(f"| {tab if tab != last[0] else ''} | {group if (tab, group) != last else ''} | `{chord}` | {does} |")
        last = (tab, group)
    return "\n".join(lines) + "\n"


_JS = """
() => {
  const ALT = %(alt)s, PLAIN = %(plain)s, ROWS = %(rows)s, HELP = %(help)s, CONFIRM = %(confirm)s;
  const visible = (el) => !!(el && el.offsetParent !== null);
  const typing = (el) => !!(el && el.closest && el.closest("input, textarea, select, [contenteditable]"));
  const overlay = () => document.getElementById("rv-keys-overlay");
  const build = () => {
    const box = document.createElement("div");
    box.id = "rv-keys-overlay";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", "Keyboard shortcuts");
    box.hidden = true;
    const panel = document.createElement("div");
    panel.className = "rv-keys-panel";
    const title = document.createElement("h2");
    title.textContent = "Keyboard shortcuts";
    panel.appendChild(title);
    let tab = null, groups = null, table = null, group = null;
    for (const [tabName, name, chord, does] of ROWS) {
      if (tabName !== tab) {  // a section per tab: its groups side by side
        tab = tabName; group = null;
        const section = document.createElement("section");
        section.className = "rv-keys-tab";
        const head = document.createElement("h3");
        head.textContent = tabName === %(any)s ? tabName : tabName + " tab";
        groups = document.createElement("div");
        groups.className = "rv-keys-groups";
        section.append(head, groups);
        panel.appendChild(section);
      }
      if (name !== group) {
        group = name;
        table = document.createElement("table");
        const head = table.insertRow();
        const cell = document.createElement("th");
        cell.colSpan = 2; cell.textContent = name;
        head.appendChild(cell);
        groups.appendChild(table);
      }
      const row = table.insertRow();
      row.className = "rv-keys-row";
      const key = row.insertCell(), what = row.insertCell();
      const kbd = document.createElement("kbd");
      kbd.textContent = chord; key.appendChild(kbd); what.textContent = does;
    }
    const foot = document.createElement("p");
    foot.textContent = "A key acts in the tab shown. Alt shortcuts work while typing in a field; ? does not (it " +
                       "types a question mark there). A list opens on its key: type to narrow it, Enter chooses. " +
                       "Esc or ? closes this list.";
    panel.appendChild(foot);
    box.appendChild(panel);
    box.addEventListener("click", (event) => { if (event.target === box) toggle(false); });
    document.body.appendChild(box);
    return box;
  };
  const toggle = (open) => {
    const box = overlay() || build();
    box.hidden = !(open === undefined ? box.hidden : open);
  };
  const act = (root) => {
    const target = root.matches("button") ? root : root.querySelector("textarea, input, button");
    if (!target) return;
    if (target.matches("button, input[type=checkbox]")) {
      target.click();  // a button acts; a checkbox toggles (and its change re-filters)
    } else {
      target.focus();  // a text box, or a list (a dropdown opens its choices on focus)
      if (target.select) target.select();
    }
  };
  document.addEventListener("click", (event) => {
    if (event.target.closest && event.target.closest("#" + HELP)) toggle();
  }, true);
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.repeat) return;
    const box = overlay();
    if (event.key === "Escape" && box && !box.hidden) {
      event.preventDefault(); event.stopPropagation();
      toggle(false);
      return;
    }
    if (!event.altKey) {
      if (PLAIN[event.key] !== HELP || typing(event.target)) return;
      event.preventDefault(); event.stopPropagation();
      toggle();
      return;
    }
    // one key, an element per tab: the one of the tab shown (the others are hidden)
    const root = (ALT[event.code] || []).map((id) => document.getElementById(id)).find(visible);
    if (!root) return;
    event.preventDefault();
    event.stopPropagation();
    if (CONFIRM[root.id] && !window.confirm(CONFIRM[root.id])) return;  // asked, and the answer was no
    act(root);
  }, true);
}
"""


def shortcut_js() -> str:
    """The script (a JS function, for ``launch(js=...)``) that dispatches every key of ``SHORTCUTS``: each Alt key
    to the elem_ids it has (one per tab), acting on the first one shown."""
    alt: dict[str, list[str]] = {}
    for elem_id, s in SHORTCUTS.items():
        if s.alt:
            alt.setdefault(s.code, []).append(elem_id)
    plain = {s.key: elem_id for elem_id, s in SHORTCUTS.items() if not s.alt}
    confirm = {elem_id: s.confirm for elem_id, s in SHORTCUTS.items() if s.confirm}
    return _JS % {"alt": json.dumps(alt), "plain": json.dumps(plain), "rows": json.dumps(help_rows()),
                  "help": json.dumps(HELP_ID), "any": json.dumps(ANY_TAB), "confirm": json.dumps(confirm)}


KEYS_CSS = """
#rv-keys-overlay { position: fixed; inset: 0; z-index: 1000; background: rgba(0, 0, 0, 0.45);
                   display: flex; align-items: center; justify-content: center; }
#rv-keys-overlay[hidden] { display: none; }
#rv-keys-overlay .rv-keys-panel { background: var(--background-fill-primary, #fff); color: var(--body-text-color, #111);
                                  max-height: 90vh; max-width: 94vw; overflow-y: auto; padding: 12px 20px;
                                  border-radius: 8px; min-width: 420px; box-shadow: 0 8px 32px rgba(0, 0, 0, 0.3); }
#rv-keys-overlay h2 { margin: 0 0 4px; font-size: 1.1em; }
#rv-keys-overlay h3 { margin: 8px 0 0; font-size: 1em; border-bottom: 1px solid #999; }
#rv-keys-overlay .rv-keys-groups { display: flex; flex-wrap: wrap; gap: 0 28px; align-items: flex-start; }
#rv-keys-overlay table { max-width: 540px; }
#rv-keys-overlay th { text-align: left; padding-top: 8px; }
#rv-keys-overlay td { padding: 1px 12px 1px 0; }
#rv-keys-overlay kbd { font-family: monospace; border: 1px solid #999; border-radius: 3px; padding: 0 4px; }
#rv-keys-overlay p { font-size: 0.85em; margin: 8px 0 0; }
"""

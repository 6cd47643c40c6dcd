"""Keyboard shortcuts: one table (``SHORTCUTS``) gives every key, what it does and the element it acts on.

Everything else is made from the table: the captions of the buttons ("Accept as is (Alt+A)"), the script that
dispatches the keys, the help overlay that ``?`` opens (``help_rows``), and the README's list
(``tests/ui/test_keys.py`` checks that it matches).

Alt+key clicks a button (or focuses a field) found by its elem_id. The browser side is one small script passed to
``launch(js=...)`` (Gradio 6 takes js/css there). It listens on the document in the capture phase, so an Alt
shortcut works while the cursor is in a text field (Alt+letter types nothing there), and it only acts on visible
elements, so a shortcut of a hidden tab does nothing. ``event.code`` is used (not ``event.key``) so Alt+letter also
works on layouts where Alt composes characters: keys are named by their place on a US keyboard. A key without Alt
(``?``) types a character, so it never fires while the cursor is in a text field. Esc closes the overlay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["Shortcut", "SHORTCUTS", "HELP_ID", "shortcut_js", "label", "help_rows", "KEYS_CSS"]


@dataclass(frozen=True)
class Shortcut:
    """One key: ``key`` as printed on a US keyboard, pressed with Alt unless ``alt`` is False."""

    key: str
    does: str
    group: str
    alt: bool = True

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

# elem_id -> shortcut, in the order the help overlay lists them. Avoid Alt+D/E/F (browser menus), arrows (history
# navigation) and Alt+Space (the window menu).
SHORTCUTS: dict[str, Shortcut] = {
    "rv-accept": Shortcut("A", "accept the suggestion as is, open the next item", "Decide"),
    "rv-save": Shortcut("S", "save the edited text, open the next item", "Decide"),
    "rv-reject": Shortcut("R", "reject the rationale, open the next item", "Decide"),
    "rv-next": Shortcut("N", "next item (saves a draft if the text changed)", "Move"),
    "rv-prev": Shortcut("P", "previous item (saves a draft if the text changed)", "Move"),
    "rv-skip": Shortcut("K", "skip to the next item, leaving this one as stored", "Move"),
    "rv-jump": Shortcut("J", "jump to a video id (type it, then Enter)", "Move"),
    "rv-search": Shortcut("/", "search the queue (type words, then Enter)", "Move"),
    # the rationale form's boxes (ui.review_forms.box_id): as many show as the item's dataset has dimensions
    "rv-dim-1": Shortcut("1", "edit the 1st dimension (subjects by default)", "Edit"),
    "rv-dim-2": Shortcut("2", "edit the 2nd dimension (attributes by default)", "Edit"),
    "rv-dim-3": Shortcut("3", "edit the 3rd dimension (actions by default)", "Edit"),
    "rv-dim-4": Shortcut("4", "edit the 4th dimension (scenes by default)", "Edit"),
    "rv-dim-5": Shortcut("5", "edit the 5th dimension (where the dataset has one)", "Edit"),
    "rv-dim-6": Shortcut("6", "edit the 6th dimension (where the dataset has one)", "Edit"),
    "rv-dim-7": Shortcut("7", "edit the 7th dimension (where the dataset has one)", "Edit"),
    "rv-dim-8": Shortcut("8", "edit the 8th dimension (where the dataset has one)", "Edit"),
    "rv-label": Shortcut("L", "choose the label", "Edit"),
    "rv-revert": Shortcut("Z", "put the suggestion's text back into the fields", "Edit"),
    "rv-regen": Shortcut("G", "regenerate this rationale with the model (a job)", "Edit"),
    "rv-vid-play": Shortcut("V", "play / pause the video", "Video"),
    "rv-vid-prev": Shortcut(",", "previous frame the model sees (pauses)", "Video"),
    "rv-vid-next": Shortcut(".", "next frame the model sees (pauses)", "Video"),
    "rv-vid-slower": Shortcut("[", "slower (down to 0.25x)", "Video"),
    "rv-vid-faster": Shortcut("]", "faster (up to 4x)", "Video"),
    "rv-vid-normal": Shortcut("0", "normal speed (1x)", "Video"),
    HELP_ID: Shortcut("?", "show or hide this list (Esc hides it)", "Help", alt=False),
}


def label(text: str, elem_id: str) -> str:
    """A caption with its shortcut, e.g. "Accept as is (Alt+A)"."""
    return f"{text} ({SHORTCUTS[elem_id].chord})"


def help_rows() -> list[tuple[str, str, str]]:
    """(group, key, what it does) of every shortcut, in the table's order: the overlay's and the README's rows."""
    return [(s.group, s.chord, s.does) for s in SHORTCUTS.values()]


_JS = """
() => {
  const ALT = %(alt)s, PLAIN = %(plain)s, ROWS = %(rows)s, HELP = %(help)s;
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
    title.textContent = "Keyboard shortcuts (Review tab)";
    const table = document.createElement("table");
    let group = null;
    for (const [name, chord, does] of ROWS) {
      if (name !== group) {
        group = name;
        const head = table.insertRow();
        const cell = document.createElement("th");
        cell.colSpan = 2; cell.textContent = name;
        head.appendChild(cell);
      }
      const row = table.insertRow();
      row.className = "rv-keys-row";
      const key = row.insertCell(), what = row.insertCell();
      const kbd = document.createElement("kbd");
      kbd.textContent = chord; key.appendChild(kbd); what.textContent = does;
    }
    const foot = document.createElement("p");
    foot.textContent = "Alt shortcuts work while typing in a field; ? does not (it types a question mark there). " +
                       "Esc or ? closes this list.";
    panel.append(title, table, foot);
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
    if (target.matches("button")) {
      target.click();
    } else {
      target.focus();
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
    const root = document.getElementById(ALT[event.code]);
    if (!visible(root)) return;
    event.preventDefault();
    event.stopPropagation();
    act(root);
  }, true);
}
"""


def shortcut_js() -> str:
    """The script (a JS function, for ``launch(js=...)``) that dispatches every key of ``SHORTCUTS``."""
    alt = {s.code: elem_id for elem_id, s in SHORTCUTS.items() if s.alt}
    plain = {s.key: elem_id for elem_id, s in SHORTCUTS.items() if not s.alt}
    return _JS % {"alt": json.dumps(alt), "plain": json.dumps(plain), "rows": json.dumps(help_rows()),
                  "help": json.dumps(HELP_ID)}


KEYS_CSS = """
#rv-keys-overlay { position: fixed; inset: 0; z-index: 1000; background: rgba(0, 0, 0, 0.45);
                   display: flex; align-items: center; justify-content: center; }
#rv-keys-overlay[hidden] { display: none; }
#rv-keys-overlay .rv-keys-panel { background: var(--background-fill-primary, #fff); color: var(--body-text-color, #111);
                                  max-height: 90vh; overflow-y: auto; padding: 12px 20px; border-radius: 8px;
                                  min-width: 420px; box-shadow: 0 8px 32px rgba(0, 0, 0, 0.3); }
#rv-keys-overlay h2 { margin: 0 0 8px; font-size: 1.1em; }
#rv-keys-overlay th { text-align: left; padding-top: 8px; }
#rv-keys-overlay td { padding: 1px 12px 1px 0; }
#rv-keys-overlay kbd { font-family: monospace; border: 1px solid #999; border-radius: 3px; padding: 0 4px; }
#rv-keys-overlay p { font-size: 0.85em; margin: 8px 0 0; }
"""

"""Keyboard shortcuts: Alt+key clicks a button (or focuses a field) found by its elem_id.

The browser side is one small script passed to ``launch(js=...)`` (Gradio 6 takes js/css there). It
listens on the document in the capture phase, so a shortcut works while the cursor is in a text field,
and it only acts on visible elements, so a shortcut of a hidden tab does nothing. ``event.code`` is
used (not ``event.key``) so Alt+letter also works on layouts where Alt composes characters.
"""

from __future__ import annotations

import json

__all__ = ["SHORTCUTS", "shortcut_js", "label"]

# elem_id -> key. Avoid Alt+D/E/F (browser menus) and arrows (history navigation).
SHORTCUTS: dict[str, str] = {
    "rv-accept": "A",
    "rv-save": "S",
    "rv-reject": "R",
    "rv-skip": "K",
    "rv-regen": "G",
    "rv-next": "N",
    "rv-prev": "P",
    "rv-revert": "Z",
    "rv-jump": "J",
    "rv-subjects": "1",
    "rv-attributes": "2",
    "rv-actions": "3",
    "rv-scenes": "4",
    "rv-label": "L",
}


def label(text: str, elem_id: str) -> str:
    """A button caption with its shortcut, e.g. "Accept as is (Alt+A)"."""
    return f"{text} (Alt+{SHORTCUTS[elem_id]})"


def _code(key: str) -> str:
    return f"Digit{key}" if key.isdigit() else f"Key{key}"


def shortcut_js() -> str:
    mapping = json.dumps({_code(key): elem_id for elem_id, key in SHORTCUTS.items()})
    return """
() => {
  const keys = %s;
  const visible = (el) => !!(el && el.offsetParent !== null);
  document.addEventListener("keydown", (event) => {
    if (!event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
    const id = keys[event.code];
    const root = id && document.getElementById(id);
    if (!visible(root)) return;
    event.preventDefault();
    event.stopPropagation();
    const target = root.matches("button") ? root : root.querySelector("textarea, input, button");
    if (!target) return;
    if (target.matches("button")) {
      target.click();
    } else {
      target.focus();
      if (target.select) target.select();
    }
  }, true);
}
""" % mapping

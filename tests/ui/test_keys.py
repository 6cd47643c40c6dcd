"""The keyboard shortcuts' one table (``ui.keys.SHORTCUTS``): every key acts on an element the page has, no two share
a key, the README lists them all as the table does, and each has a browser test (``tests/browser/test_keys_browser.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr

from tests.browser.test_keys_browser import CHECKS
from ui.app import build_tabs
from ui.keys import HELP_ID, SHORTCUTS, help_rows, label, shortcut_js
from ui.player import player_bar_html

ROOT = Path(__file__).resolve().parents[2]


def test_every_shortcut_acts_on_an_element_of_the_page():
    with gr.Blocks() as demo:
        build_tabs(demo, "sqlite:////nonexistent/never-opened.db")
    elem_ids = {block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    elem_ids |= set(re.findall(r'id="([\w-]+)"', player_bar_html()))
    assert set(SHORTCUTS) <= elem_ids, set(SHORTCUTS) - elem_ids
    assert HELP_ID in SHORTCUTS and not SHORTCUTS[HELP_ID].alt  # `?` opens the help overlay


def test_no_two_shortcuts_share_a_key_and_none_is_the_browsers():
    alt = [s.code for s in SHORTCUTS.values() if s.alt]
    assert len(alt) == len(set(alt))
    assert not {"KeyD", "KeyE", "KeyF", "Space"} & set(alt)  # browser menus, the address bar, the window menu
    assert all(s.code in shortcut_js() for s in SHORTCUTS.values() if s.alt)
    assert label("Accept as is", "rv-accept") == "Accept as is (Alt+A)"


def test_every_shortcut_has_a_browser_test_of_its_effect():
    assert list(CHECKS) == list(SHORTCUTS)


def test_the_readme_lists_every_key_as_the_table_does():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    listed, group = [], ""
    for named, chord, does in re.findall(r"^\| (\w*) +\| `(.+?)` \| (.+?) \|$", text, flags=re.M):
        group = named or group  # a group is named on its first row only
        listed.append((group, chord, does))
    assert listed == help_rows()

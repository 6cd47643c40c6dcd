"""The keyboard shortcuts' one table (``ui.keys.SHORTCUTS``): every key acts on an element the page has, no two of a
tab share a key, the README lists them all as the table does, and each has a browser test
(``tests/browser/test_keys_browser.py``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gradio as gr

from tests.browser.test_keys_browser import CHECKS
from ui.app import build_tabs
from ui.keys import ANY_TAB, HELP_ID, SHORTCUTS, help_rows, label, markdown_table, shortcut_js
from ui.player import player_bar_html

ROOT = Path(__file__).resolve().parents[2]


def test_every_shortcut_acts_on_an_element_of_the_page():
    with gr.Blocks() as demo:
        build_tabs(demo, "sqlite:////nonexistent/never-opened.db")
    elem_ids = {block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    elem_ids |= set(re.findall(r'id="([\w-]+)"', player_bar_html()))
    assert set(SHORTCUTS) <= elem_ids, set(SHORTCUTS) - elem_ids
    assert HELP_ID in SHORTCUTS and not SHORTCUTS[HELP_ID].alt  # `?` opens the help overlay


def test_no_two_shortcuts_of_a_tab_share_a_key_and_none_is_the_browsers():
    tabs = {s.tab for s in SHORTCUTS.values()} - {ANY_TAB}
    assert tabs == {"Review", "Adjudicate"}
    for tab in tabs:
        alt = [s.code for s in SHORTCUTS.values() if s.alt and s.tab in (tab, ANY_TAB)]
        assert len(alt) == len(set(alt)), tab
    alt = {s.code for s in SHORTCUTS.values() if s.alt}
    assert not {"KeyD", "KeyE", "KeyF", "Space"} & alt  # browser menus, the address bar, the window menu
    assert label("Accept as is", "rv-accept") == "Accept as is (Alt+A)"
    assert label("Finalise", "adj-accept") == "Finalise (Alt+A)"  # the same key, where it means the same


def test_the_script_sends_each_key_to_its_element_in_every_tab():
    alt = json.loads(re.search(r"const ALT = (\{.*?\}), PLAIN", shortcut_js()).group(1))
    expected: dict[str, list[str]] = {}
    for elem_id, s in SHORTCUTS.items():
        if s.alt:
            expected.setdefault(s.code, []).append(elem_id)
    assert alt == expected
    assert alt["KeyA"] == ["rv-accept", "adj-accept"] and alt["Digit1"] == ["rv-dim-1", "adj-dim-1"]
    assert all(elem_id.startswith(("rv-", "adj-")) for ids in alt.values() for elem_id in ids)


def test_every_review_and_adjudicate_control_has_a_key():
    """Every input and button of the two tabs, but the admins' settings (k, assigned adjudicators, in a folded
    accordion)."""
    with gr.Blocks() as demo:
        build_tabs(demo, "sqlite:////nonexistent/never-opened.db")
    controls = {block.elem_id for block in demo.blocks.values()
                if isinstance(block, (gr.Button, gr.Textbox, gr.Dropdown, gr.Checkbox, gr.Number))
                and (block.elem_id or "").startswith(("rv-", "adj-"))}
    assert controls - set(SHORTCUTS) == {"adj-k", "adj-assigned", "adj-save-settings"}


def test_every_shortcut_has_a_browser_test_of_its_effect():
    assert list(CHECKS) == list(SHORTCUTS)


def test_the_readme_lists_every_key_as_the_table_does():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in text, 'regenerate: python -c "from ui.keys import markdown_table; print(markdown_table())"'
    listed, tab, group = [], "", ""
    for named_tab, named, chord, does in re.findall(r"^\| ([\w ]*?) *\| (\w*) +\| `(.+?)` \| (.+?) \|$", text,
                                                    flags=re.M):
        tab, group = named_tab or tab, named or group  # a tab and a group are named on their first row only
        listed.append((tab, group, chord, does))
    assert listed == help_rows()  # and no other table of the README looks like a list of keys

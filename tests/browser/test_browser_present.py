"""The browser the browser tests drive is there and starts (a skip here on CI would hide every browser test)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_chromium_starts(browser):
    page = browser.new_page()
    page.set_content("<p id='x'>ok</p>")
    assert page.inner_text("#x") == "ok"
    page.close()

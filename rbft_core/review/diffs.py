"""Word-level differences between two texts (the review page's and the adjudication view's diffs)."""

from __future__ import annotations

import difflib
import re
from typing import Optional

__all__ = ["field_diff", "normalise"]

_TOKEN = re.compile(r"\s+|[^\s]+")


def normalise(text: Optional[str]) -> str:
    """What a save compares and stores: Windows line ends folded, outer white space gone."""
    return (text or "").replace("\r\n", "\n").strip()


def field_diff(before: Optional[str], after: Optional[str]) -> list[tuple[str, str]]:
    """Word-level difference as ("=" | "-" | "+", text) pieces (difflib); empty when the texts are equal."""
    a, b = _TOKEN.findall(normalise(before)), _TOKEN.findall(normalise(after))
    if a == b:
        return []
    pieces: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            pieces.append(("=", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(("-", "".join(a[i1:i2])))
        if j2 > j1:
            pieces.append(("+", "".join(b[j1:j2])))
    return pieces

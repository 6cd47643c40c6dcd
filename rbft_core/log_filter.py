"""A job's log as a person wants to read it: the project's own lines, with library noise collapsed.

Training logs fill up with library output: Python warnings from transformers / torch / peft (a
``path.py:123: FutureWarning: ...`` line and the ``warnings.warn(`` line echoed under it), deprecation notes,
transformers' own advice lines (```use_cache=True` is incompatible with gradient checkpointing...``) and tqdm
bars. ``filter_log`` keeps every other line, and ends with one line that lists each distinct warning once with
how often it came (``3 library warnings hidden: FutureWarning: ... (x12); ...``). Pure: text in, text out.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["FilteredLog", "filter_log", "split_log"]

# `/site-packages/transformers/modeling_utils.py:2345: FutureWarning: message`
_PY_WARNING = re.compile(r"^\S.*?\.py:\d+: (?P<kind>\w*(?:Warning|Deprecation)\w*): (?P<text>.*)$")
# `FutureWarning: message` / `WARNING:transformers...: message` / `[W ...] message` (torch's C++ warnings)
_BARE_WARNING = re.compile(r"^(?:(?P<kind>\w+Warning): |WARNING:[\w.]+:\s*|\[W\d*[^\]]*\]\s*)(?P<text>.*)$")
# transformers' logger advice lines start with a backquoted argument; deprecation notes say so
_LIBRARY_NOTE = re.compile(r"^`\w[^`]*` (?:is|was|are|will|should|has|must)\b|\bdeprecated\b|will be removed in",
                           re.IGNORECASE)
# tqdm: ` 50%|█████     | 5/10 [00:03<00:03,  1.50it/s]`, `Map: 100%|...| 12/12 [...]`
_TQDM = re.compile(r"\d+%\|.*\|\s*\d+/\d+|\d+/\d+ \[\d+:\d+(?::\d+)?<|\d+(?:\.\d+)?(?:it|s)/(?:s|it)\]")
_SHOWN_CHARS = 90


@dataclass
class FilteredLog:
    """The project's own lines, each distinct library warning with its count (first seen first), and the
    number of progress-bar lines dropped."""

    lines: list[str] = field(default_factory=list)
    warnings: Counter = field(default_factory=Counter)
    bars: int = 0

    def summary(self) -> str:
        """``3 library warnings hidden: FutureWarning: ... (x12); UserWarning: ... (x1)`` (empty when none)."""
        parts = []
        if self.warnings:
            shown = "; ".join(f"{_short(w)} (x{n})" for w, n in self.warnings.items())
            noun = "warning" if len(self.warnings) == 1 else "warnings"
            parts.append(f"{len(self.warnings)} library {noun} hidden: {shown}")
        if self.bars:
            parts.append(f"{self.bars} progress-bar line{'s' if self.bars != 1 else ''} hidden")
        return " · ".join(parts)


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1].rstrip() + "…"


def split_log(lines: list[str]) -> FilteredLog:
    """Sort each line: the project's own, a library warning (counted by its text), or a progress bar."""
    out = FilteredLog()
    echo = False  # the source line Python prints under a warning (`  warnings.warn(`) belongs to it
    for line in lines:
        if not line.strip():
            continue
        if echo and line.startswith((" ", "\t")):
            continue
        echo = False
        match = _PY_WARNING.match(line)
        if match:
            out.warnings[f"{match['kind']}: {match['text'].strip()}"] += 1
            echo = True
            continue
        match = _BARE_WARNING.match(line)
        if match:
            kind = match["kind"]
            out.warnings[f"{kind}: {match['text'].strip()}" if kind else match["text"].strip()] += 1
            echo = True
            continue
        if _TQDM.search(line):
            out.bars += 1
            continue
        if _LIBRARY_NOTE.search(line):
            out.warnings[line.strip()] += 1
            continue
        out.lines.append(line)
    return out


def filter_log(text: str, lines: int = 30) -> str:
    """The last ``lines`` lines of the project's own output in ``text`` (tqdm's carriage-return redraws
    collapsed to their last state), then one line summarising what was hidden."""
    shown = [line.rsplit("\r", 1)[-1] for line in text.replace("\r\n", "\n").split("\n")]
    sorted_log = split_log(shown)
    tail = sorted_log.lines[-lines:] if lines > 0 else []
    summary = sorted_log.summary()
    return "\n".join([*tail, f"[{summary}]"] if summary else tail)

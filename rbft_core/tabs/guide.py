"""The first-run guide's content: the five steps of RB-FT (import, generate, review, train, inspect/export), each
with its current count from the database, which tab does it, and which step comes next.

Counts are cheap whatever the dataset's size: videos and reviews come from the counters kept on write
(``db.counters.totals``), runs and exports are counted in their tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from db import counters
from db import job_queries as jq
from db.engine import init_db, session_scope

__all__ = ["GuideStep", "Guide", "STEP_TABS", "guide_state"]

# step key -> (title, what to do, the tab that does it)
STEP_TABS: dict[str, tuple[str, str, str]] = {
    "import": ("Import", "create a dataset and import a folder of labelled videos", "Datasets"),
    "generate": ("Generate", "have the model write a rationale per video", "Datasets"),
    "review": ("Review", "accept, edit or reject the rationales", "Review"),
    "train": ("Train", "run RB-FT (Stage I then II) beside direct SFT", "Train"),
    "inspect": ("Inspect / export", "compare attention and masking; export the curated data", "Inspect"),
}


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class GuideStep:
    key: str
    title: str
    what: str
    tab: str
    count: str  # the current count in words, e.g. "3 datasets, 180 videos"
    done: bool


@dataclass(frozen=True)
class Guide:
    steps: tuple[GuideStep, ...]
    next_step: Optional[str]  # the first step not done yet; None when every step has something
    has_run: bool  # the guide folds away once a run exists

    def step(self, key: str) -> GuideStep:
        return next(s for s in self.steps if s.key == key)


def guide_state(db_url: Optional[str]) -> Guide:
    """The five steps with their counts, read from the database (created when missing)."""
    init_db(db_url)
    with session_scope(db_url) as s:
        totals = counters.totals(s)
        runs = jq.count_runs(s)
        exports = jq.count_jobs(s, "export", "succeeded")
    rationales = totals["videos"] - totals["none"]
    reviewed = totals["accepted"] + totals["rejected"]
    counts = {
        "import": (f"{_plural(totals['datasets'], 'dataset')}, {_plural(totals['videos'], 'video')}",
                   totals["videos"] > 0),
        "generate": (_plural(rationales, "rationale"), rationales > 0),
        "review": (f"{reviewed:,} reviewed" + (f", {_plural(totals['draft'], 'draft')}" if totals["draft"] else ""),
                   reviewed > 0),
        "train": (_plural(runs["total"], "run") + (f" ({runs['succeeded']:,} finished)" if runs["total"] else ""),
                  runs["total"] > 0),
        "inspect": (f"{_plural(runs['succeeded'], 'run')} to inspect, {_plural(exports, 'export')}", exports > 0),
    }
    steps = tuple(GuideStep(key, *STEP_TABS[key], *counts[key]) for key in STEP_TABS)
    following = next((s.key for s in steps if not s.done), None)
    return Guide(steps=steps, next_step=following, has_run=runs["total"] > 0)

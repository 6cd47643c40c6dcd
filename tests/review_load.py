"""Concurrent reviewers against a running app, through gradio_client (one Client = one browser tab).

Each reviewer opens the queue, then repeatedly jumps to one of a few shared items (the app keeps the
version it showed in the tab's session state) and saves an edit whose subjects text is unique
(``<reviewer>-<n>``). Between the jump and the save others may save the same item, so some saves are
stale: the app must refuse them with a conflict message. Afterwards the database is checked: every
accepted save is one revision (not refused) carrying its text, every refused save is kept as a refused
revision, and no "database is locked" text reached a reviewer. Used by tests/ui/test_concurrency.py
(small counts) and bench/bench_concurrency.py (8 reviewers x 200 saves).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LoadReport", "run_review_load", "run_collision", "check_against_db", "api_item", "api_form", "BOXES",
           "NAMES", "OPEN"]

OPEN = ("todo", "", "", "any", False, "", "")  # status, label, split, edited, parse failed, search, flag
# The rationale form's eight boxes (ui.review_forms): the review world's datasets fill the first four with the paper's
# dimensions and hide the others.
BOXES = ("subjects", "attributes", "actions", "scenes", "box5", "box6", "box7", "box8")
NAMES = ("header", "video", "frames", "notice", "suggestion", *BOXES, "label", "status", "diff", "history", "place",
         "counts")


@dataclass
class LoadReport:
    reviewers: int
    saves_per_reviewer: int
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (item, text) of saves the app accepted
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (item, text, message) of conflicts
    other_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # filled by check_against_db
    lost: list[str] = field(default_factory=list)
    refused_not_kept: list[str] = field(default_factory=list)
    revision_rows: int = 0

    @property
    def locked_errors(self) -> int:
        return sum("database is locked" in m.lower() for m in self.other_errors + [r[2] for r in self.refused])

    def figures(self) -> str:
        attempts = self.reviewers * self.saves_per_reviewer
        return (f"reviewers {self.reviewers} x saves {self.saves_per_reviewer} = {attempts} attempts in "
                f"{self.seconds:.1f} s ({attempts / max(self.seconds, 1e-9):.1f} saves/s)\n"
                f"accepted {len(self.accepted)}, refused as stale {len(self.refused)} (all with a conflict message: "
                f"{all('saved by' in r[2] for r in self.refused)}), other errors {len(self.other_errors)}\n"
                f"lost edits {len(self.lost)}, refused saves missing from the history {len(self.refused_not_kept)}, "
                f"'database is locked' seen by a reviewer {self.locked_errors}, accepted-save revisions "
                f"{self.revision_rows}")


def api_item(result: Any) -> dict[str, Any]:
    """The outputs an item-changing endpoint returns, by name (its gr.State outputs are not sent). The boxes and the
    label come back as updates (their labels, visibility, choices): only their values are kept."""
    item = dict(zip(NAMES, result))
    for name in (*BOXES, "label"):
        if isinstance(item.get(name), dict):
            item[name] = item[name].get("value")
    return item


def api_form(item: dict[str, Any], **typed: Any) -> list[Any]:
    """What the page sends back: every box (``typed`` replaces some, by name) and the label."""
    return [typed.get(b, item[b] or "") for b in BOXES] + [typed.get("label", item["label"])]


_item = api_item


def _reviewer(url: str, name: str, items: list[str], saves: int, seed: int, report: LoadReport,
              lock: threading.Lock, start: threading.Barrier) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    rng = random.Random(seed)
    client = Client(url, verbose=False, download_files=False)  # the media is not what is measured
    shown = _item(client.predict(items[0].split("/")[0], *OPEN, api_name="/review_open"))
    start.wait()
    for n in range(saves):
        ref = items[rng.randrange(len(items))].split("/")[1]
        fields = api_form(shown)
        text = f"{name}-{n}"
        try:
            # Passing back what the tab shows: the jump saves no draft (unless the open item moved on
            # meanwhile, which is refused and kept like any stale save).
            shown = _item(client.predict(name, *fields, ref, api_name="/review_jump"))
            edit = api_form(shown, subjects=text)
            time.sleep(rng.random() * 0.01)  # think time: lets others save the same item meanwhile
            shown = _item(client.predict(name, *edit, api_name="/review_edit"))
            with lock:
                report.accepted.append((ref, text))
        except AppError as exc:
            message = str(exc)
            with lock:
                if "saved by" in message:
                    report.refused.append((ref, text, message))
                else:
                    report.other_errors.append(message)
            shown = _reopen(client, name, ref)  # as a reviewer would: reload the item (Alt+J)
        except Exception as exc:  # noqa: BLE001 - anything else is a failure the report must show
            with lock:
                report.other_errors.append(f"{type(exc).__name__}: {exc}")
            shown = _reopen(client, name, ref)
    client.close()


def _reopen(client: Any, name: str, ref: str) -> dict[str, Any]:
    """Reopen ``ref`` without saving anything: skip from the open item, then jump with its stored text."""
    shown = _item(client.predict(name, *[""] * len(BOXES), None, api_name="/review_skip"))
    return _item(client.predict(name, *api_form(shown), ref, api_name="/review_jump"))


def run_review_load(url: str, items: list[str], *, reviewers: int, saves: int, seed: int = 0) -> LoadReport:
    """``items``: "dataset/external_id" strings, all in one dataset, shared by every reviewer."""
    report = LoadReport(reviewers=reviewers, saves_per_reviewer=saves)
    lock = threading.Lock()
    start = threading.Barrier(reviewers + 1)
    errors: list[BaseException] = []

    def work(r: int) -> None:
        try:
            _reviewer(url, f"rev{r}", items, saves, seed * 1000 + r, report, lock, start)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=work, args=(r,)) for r in range(reviewers)]
    for t in threads:
        t.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass
    began = time.perf_counter()
    for t in threads:
        t.join()
    report.seconds = time.perf_counter() - began
    if errors:
        raise errors[0]
    return report


def run_collision(url: str, item: str, *, reviewers: int) -> LoadReport:
    """Every reviewer opens ``item`` ("dataset/external_id") at the same version, then all save at once: exactly
    one save can win; every other one must be refused as stale (a deterministic conflict, not a lucky one)."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    dataset, ref = item.split("/")
    report = LoadReport(reviewers=reviewers, saves_per_reviewer=1)
    lock, opened, go = threading.Lock(), threading.Barrier(reviewers), threading.Barrier(reviewers)
    errors: list[BaseException] = []

    def work(r: int) -> None:
        name = f"clash{r}"
        try:
            client = Client(url, verbose=False, download_files=False)
            shown = _item(client.predict(dataset, *OPEN, api_name="/review_open"))
            shown = _item(client.predict(name, *api_form(shown), ref, api_name="/review_jump"))
            opened.wait(timeout=120)  # nobody saves before everybody has the item open
            go.wait(timeout=120)
            text = f"{name}-only"
            try:
                client.predict(name, *api_form(shown, subjects=text), api_name="/review_edit")
                with lock:
                    report.accepted.append((ref, text))
            except AppError as exc:
                with lock:
                    (report.refused.append((ref, text, str(exc))) if "saved by" in str(exc)
                     else report.other_errors.append(str(exc)))
            client.close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            opened.abort()
            go.abort()

    threads = [threading.Thread(target=work, args=(r,)) for r in range(reviewers)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.seconds = time.perf_counter() - began
    if errors:
        raise errors[0]
    return report


def check_against_db(db_url: str, report: LoadReport) -> LoadReport:
    """Fill ``lost`` / ``refused_not_kept`` / ``revision_rows`` from the revision history."""
    from sqlalchemy import select

    from db.engine import session_scope
    from db.models import ReviewRevision

    with session_scope(db_url) as s:
        rows = [(r.after or {}, r.reviewer) for r in s.scalars(select(ReviewRevision))]
    saved = [after.get("subjects") for after, _ in rows if "refused" not in after]
    kept_refused = {after.get("subjects") for after, _ in rows if "refused" in after}
    accepted_texts = {text for _, text in report.accepted}
    report.revision_rows = sum(1 for text in saved if text in accepted_texts)
    saved_set = set(saved)
    report.lost = sorted(text for _, text in report.accepted if text not in saved_set)
    report.refused_not_kept = sorted(text for _, text, _ in report.refused if text not in kept_refused)
    return report

"""A newcomer's path through the running app, timed step by step in a real browser (issue #18).

Start the app the way the README says (`make run`: venv, `rbft demo prepare`, launch), then point this script at
it. It does what a first-time user does, clicking the app's own buttons, and prints how long each step took:

1. open the app (the first-run guide shows the five steps);
2. Datasets tab: "Generate rationales" with the defaults (the demo model, its 4 frames) and wait for the job;
3. Review tab: review ``--review`` items with the keyboard (every fifth one edited and saved, the rest accepted);
4. Train tab: "Run RB-FT" with the default preset (CPU demo) and baselines, and wait for the results table.

    make run &                                   # in a fresh clone; the app listens on 127.0.0.1:7860
    .venv/bin/python bench/newcomer_path.py --url http://127.0.0.1:7860 --json newcomer.json

Chromium comes from Debian (`/usr/bin/chromium`, as in the browser tests). The load average is printed beside
each step: on a shared machine the times are an upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


def _text(page, selector: str) -> str:
    return page.evaluate("(s) => document.querySelector(s)?.innerText || ''", selector)


def _wait_for_job(page, selector: str, timeout_s: float, label: str) -> str:
    """Wait until the job box says succeeded; stop early (with its text) when it says failed or interrupted."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = _text(page, selector)
        if "succeeded" in text:
            return text
        if any(word in text for word in ("failed", "interrupted", "cancelled")):
            raise SystemExit(f"{label} did not succeed: {text.strip()[:400]}")
        time.sleep(2.0)
    raise SystemExit(f"{label} still running after {timeout_s:.0f} s: {_text(page, selector).strip()[:400]}")


def open_app(page, url: str) -> dict:
    page.goto(url)
    page.locator("#guide-import").wait_for(state="visible", timeout=60_000)
    return {"guide": _text(page, "#guide").strip()[:300]}


def generate(page, timeout_s: float) -> dict:
    page.get_by_role("tab", name="Datasets").click()
    page.wait_for_function("() => (document.querySelector('#ds-selected input')?.value || '') !== ''", timeout=30_000)
    page.get_by_text("Generate rationales (runs as a job)").click()
    frames = page.locator("#ds-gen-frames input").input_value()
    page.get_by_role("button", name="Generate", exact=True).click()
    text = _wait_for_job(page, "#ds-job", timeout_s, "generation")
    return {"frames": frames, "job": text.strip()[:300]}


def review(page, items: int) -> dict:
    page.get_by_role("tab", name="Review").click()
    page.wait_for_selector("#rv-header b", timeout=60_000)
    edited = 0
    shown = "() => document.querySelector('#rv-header [data-review]')?.dataset.review || ''"
    for i in range(items):
        review_id = page.evaluate(shown)
        if i % 5 == 4:  # an expert fixes one rationale in five and saves it
            box = page.locator("#rv-dim-1 textarea")  # the first dimension (subjects in the demo)
            box.fill(box.input_value() + " (checked by the expert)")
            page.keyboard.press("Alt+S")
            edited += 1
        else:
            page.keyboard.press("Alt+A")
        # the next item is open when the header names another review (its text also shows Gradio's spinner)
        page.wait_for_function(f"(r) => ({shown})() !== r && ({shown})() !== ''", arg=review_id, timeout=180_000)
    return {"reviewed": items, "edited": edited, "counts": _text(page, "#rv-counts").strip()[:300]}


def train(page, timeout_s: float) -> dict:
    page.get_by_role("tab", name="Train").click()
    page.wait_for_function("() => (document.querySelector('#train-dataset input')?.value || '') !== ''",
                           timeout=30_000)
    preset = page.locator("#train-preset input").input_value()
    page.locator("#train-run-rbft").click()
    page.wait_for_selector("#train-progress", timeout=60_000)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = page.evaluate("() => { const p = document.querySelector('#train-progress');"
                               " return p ? [p.dataset.status, p.dataset.finished] : ['', '0']; }")
        if status[1] == "1":
            break
        time.sleep(3.0)
    else:
        raise SystemExit(f"the RB-FT job is still running after {timeout_s:.0f} s")
    if status[0] != "succeeded":
        raise SystemExit(f"the RB-FT job ended {status[0]}: {_text(page, '#train-progress')[:400]}")
    page.locator("#train-refresh").click()
    page.wait_for_function("() => (document.querySelector('#train-compare')?.innerText || '').includes('stage2')",
                           timeout=60_000)
    return {"preset": preset, "progress": _text(page, "#train-progress").strip()[:300],
            "comparison": _text(page, "#train-compare").strip()[:1500]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860", help="the running app (default %(default)s)")
    parser.add_argument("--review", type=int, default=20, help="items to review (default 20)")
    parser.add_argument("--timeout", type=float, default=5400.0, help="seconds per job (default 5400)")
    parser.add_argument("--json", default="", help="also write the timings to this JSON file")
    parser.add_argument("--skip", action="append", default=[], choices=["generate", "review", "train"],
                        help="leave out a step already done (repeatable)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright  # a dev dependency (the browser tests use it)

    steps = [("open the app", lambda p: open_app(p, args.url)),
             ("generate rationales", lambda p: generate(p, args.timeout)),
             (f"review {args.review} items", lambda p: review(p, args.review)),
             ("run RB-FT with baselines", lambda p: train(p, args.timeout))]
    skipped = {"generate": 1, "review": 2, "train": 3}
    steps = [step for i, step in enumerate(steps) if i not in {skipped[s] for s in args.skip}]
    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for name, step in steps:
            load = os.getloadavg()[0]
            started = time.perf_counter()
            detail = step(page)
            took = time.perf_counter() - started
            results.append({"step": name, "seconds": round(took, 1), "load_before": round(load, 2),
                            "load_after": round(os.getloadavg()[0], 2), **detail})
            print(f"{name:<28} {took:8.1f} s   load {load:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
        browser.close()
    print(json.dumps(results[-1].get("comparison", ""), ensure_ascii=False))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

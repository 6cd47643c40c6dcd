"""Review page round trip in a real browser: "save edit and next" with 20,000 videos in the database,
against a trivial echo event in the same app (the floor every Gradio event pays).

The database gets N videos through ``db.queries.add_video`` (distinct fake sha values; every row points
at one shared small clip, so each item is a frame-cache miss as in a fresh dataset) and one suggestion
each through ``db.queries.add_suggestion`` (doubt scores as generation stores them). The app runs as a
subprocess with an extra echo button; chromium (playwright) times both events inside the page, from the
click to the DOM change of the output (MutationObserver), interleaved. Prints p50/p95 and the ratio
(goal: p95 <= 2x the floor's p95), and also the time until the next item's frames have loaded.

    .venv/bin/python bench/bench_review.py [--videos 20000] [--iterations 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEXT = dict(subjects="a man in a dark hoodie; a parcel on the doormat",
            attributes="adult, dark hoodie, hood up, large backpack; one brown cardboard box",
            actions="walks up the path, looks around twice, picks up the parcel and leaves quickly",
            scenes="front porch of a house, daylight, doorbell camera looking down at the step")


def populate(db_url: str, clip: Path, n: int) -> float:
    from db import queries
    from db.engine import init_db, session_scope

    started = time.perf_counter()
    init_db(db_url)
    with session_scope(db_url) as s:
        ds = queries.get_or_create_dataset(s, "bench", preset="smart-home", labels=["normal", "abnormal"])
        dataset_id = ds.id
    for start in range(0, n, 2000):
        with session_scope(db_url) as s:
            for i in range(start, min(n, start + 2000)):
                label = "abnormal" if i % 3 == 0 else "normal"
                video = queries.add_video(s, dataset_id, external_id=f"v{i:05d}", path=str(clip), sha256=f"{i:064x}",
                                          label=label, split="train", size_bytes=clip.stat().st_size)
                conclusion = "This is normal." if i % 7 == 0 else f"This is {label}."
                queries.add_suggestion(s, video.id, model_id="Qwen/Qwen2.5-VL-7B-Instruct", prompt_version="rationale-v1",
                                       conclusion=conclusion, parse_status="failed" if i % 97 == 0 else "ok",
                                       mean_logprob=-0.2 - (i % 50) / 10, gen_params={"num_frames": 8},
                                       **({} if i % 97 == 0 else TEXT))
    return time.perf_counter() - started


def serve(db_url: str, port: int) -> None:
    """The real app plus one echo button (the floor), launched like app.py does."""
    import gradio as gr

    from ui.app import build_app, page_assets

    demo = build_app(db_url)
    with demo:
        with gr.Row():
            echo_in = gr.Textbox(elem_id="bench-echo-in", label="echo in")
            echo_out = gr.HTML(elem_id="bench-echo-out")
            echo = gr.Button("echo", elem_id="bench-echo")
        echo.click(lambda text: text, echo_in, echo_out, api_name="bench_echo")
    demo.queue(default_concurrency_limit=8).launch(server_name="127.0.0.1", server_port=port, quiet=True,
                                                  **page_assets())


# One timed click inside the page, from click() to the DOM change of the output's content (not of its
# progress indicator): ``content`` is the element inside ``watch`` whose text must change, or contain ``expect``.
TIMED_CLICK = """
async ([button, watch, content, expect, prepare]) => {
  const root = document.querySelector(watch);
  const text = () => { const el = content ? root.querySelector(content) : root; return el ? el.innerText : ""; };
  const before = text();
  const counts = () => (document.querySelector("#rv-counts") || {}).innerText || "";
  const countsBefore = counts();
  const done = () => { const t = text(); return expect ? t.includes(expect) : (t.length > 0 && t !== before); };
  if (prepare) {
    const area = document.querySelector(prepare.selector);
    area.value = prepare.value;
    area.dispatchEvent(new Event("input", {bubbles: true}));
    await new Promise(r => setTimeout(r, 30));
  }
  const changed = new Promise(resolve => {
    const obs = new MutationObserver(() => { if (done()) { obs.disconnect(); resolve(performance.now()); } });
    obs.observe(root, {subtree: true, childList: true, characterData: true});
  });
  const t0 = performance.now();
  document.querySelector(button).click();
  const t1 = await changed;
  let t2 = t1, t3 = t1;
  if (prepare) {  // also: until the new frame strip has loaded, and until the counts (a follow-up event) changed
    let frames = false, tallied = false;
    for (let i = 0; i < 600 && !(frames && tallied); i++) {
      const imgs = [...document.querySelectorAll("#rv-frames img")];
      if (!frames && imgs.length >= 8 && imgs.every(im => im.complete && im.naturalWidth > 0)) {
        frames = true; t2 = performance.now();
      }
      if (!tallied && counts() !== countsBefore) { tallied = true; t3 = performance.now(); }
      await new Promise(r => requestAnimationFrame(r));
    }
  }
  return [t1 - t0, t2 - t0, t3 - t0];
}
"""


def measure(url: str, iterations: int, warmup: int, pause_s: float) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    times: dict[str, list[float]] = {"echo": [], "save_next": [], "save_next_frames": [], "save_next_counts": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        page.goto(url)
        page.get_by_role("tab", name="Review").click()
        page.wait_for_selector("#rv-header b", timeout=60_000)
        for i in range(warmup + iterations):
            page.fill("#bench-echo-in textarea", f"ping {i}")
            time.sleep(pause_s)  # a reviewer reads before acting; background warm-up of the next item finishes
            echo = page.evaluate(TIMED_CLICK, ["#bench-echo", "#bench-echo-out", None, f"ping {i}", None])
            time.sleep(pause_s)
            save = page.evaluate(TIMED_CLICK, ["#rv-save", "#rv-header", ".rv-header code", None,
                                               {"selector": "#rv-subjects textarea", "value": f"edited subjects {i}"}])
            if i >= warmup:
                times["echo"].append(echo[0])
                times["save_next"].append(save[0])
                times["save_next_frames"].append(save[1])
                times["save_next_counts"].append(save[2])
        browser.close()
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=20000)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pause-ms", type=float, default=500.0, help="idle time before each timed click")
    parser.add_argument("--serve", nargs=2, metavar=("DB_URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    from tests.helpers import make_video
    from tests.review_world import free_port

    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        root = Path(tmp)
        os.environ["RBFT_DATA_DIR"] = str(root / "data")
        clip = make_video(root / "clip.mp4", num_frames=16, size=(320, 240), fps=8)
        db_url = f"sqlite:///{root / 'bench.db'}"
        seconds = populate(db_url, clip, args.videos)
        print(f"database: {args.videos} videos + suggestions inserted in {seconds:.1f} s")
        port = free_port()
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        server = subprocess.Popen([sys.executable, __file__, "--serve", db_url, str(port)], env=env, cwd=str(REPO),
                                  stdout=open(root / "server.log", "wb"), stderr=subprocess.STDOUT)
        try:
            _wait_up(f"http://127.0.0.1:{port}/", server)
            times = measure(f"http://127.0.0.1:{port}/", args.iterations, args.warmup, args.pause_ms / 1000)
        finally:
            server.terminate()
            server.wait(timeout=20)
    report(times, args.videos)
    print(f"(each timed click after {args.pause_ms:.0f} ms idle)")
    return 0


def _wait_up(url: str, server: subprocess.Popen, timeout_s: float = 120.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited with {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server did not answer at {url}")


def report(times: dict[str, list[float]], videos: int) -> None:
    echo50, echo95 = pct(times["echo"], 0.5), pct(times["echo"], 0.95)
    save50, save95 = pct(times["save_next"], 0.5), pct(times["save_next"], 0.95)
    frames50, frames95 = pct(times["save_next_frames"], 0.5), pct(times["save_next_frames"], 0.95)
    n = len(times["echo"])
    print(f"{n} round trips each, {videos} videos in the database, browser-measured (click -> DOM change)")
    print(f"echo (floor)             p50 {echo50:7.1f} ms   p95 {echo95:7.1f} ms   mean {statistics.mean(times['echo']):.1f}")
    print(f"save edit + next         p50 {save50:7.1f} ms   p95 {save95:7.1f} ms   mean {statistics.mean(times['save_next']):.1f}")
    print(f"  ... until frames shown p50 {frames50:7.1f} ms   p95 {frames95:7.1f} ms")
    counts50, counts95 = pct(times["save_next_counts"], 0.5), pct(times["save_next_counts"], 0.95)
    print(f"  ... until counts shown p50 {counts50:7.1f} ms   p95 {counts95:7.1f} ms   (follow-up event)")
    print(f"ratio p95 save/echo: {save95 / echo95:.2f}x (goal <= 2.0x); p50: {save50 / echo50:.2f}x")


if __name__ == "__main__":
    sys.exit(main())

"""Review page round trip in a real browser: "save edit and next" at several dataset sizes, against a trivial
echo event in the same app (the floor every Gradio event pays).

For each size the database gets N videos and one suggestion each through the db layer's bulk writes
(``bench/bench_insert.py``: distinct fake sha values, every row pointing at one shared small clip, so each
item is a frame-cache miss as in a fresh dataset; doubt scores, queue columns and counters as generation
stores them). The app runs as a subprocess with an extra echo button; chromium (playwright) times both events
inside the page, from the click to the DOM change of the output (MutationObserver), interleaved. Prints, per
size and side by side: p50/p95 of both, the ratio (goal at 200,000: save-and-next p95 <= 1.3x the floor's),
the time until the next item's frames have loaded, and how long after the item the counts appear (goal
<= 100 ms), plus the insert time (goal: 200,000 rows <= 60 s).

``--k 3``: the dataset asks for three reviews per item, so each save is the reviewer's own response and "next" is
the next item that reviewer has not answered (the queue with its NOT EXISTS probe per entry); the counts do not
change with a response, so the "counts shown" time watches the queue place (its length drops by one) instead.

    .venv/bin/python bench/bench_review.py --videos 20000 200000 [--iterations 100] [--k 3]
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

def populate(db_url: str, clip: Path, n: int) -> float:
    from bench.bench_insert import populate as bulk_populate

    return bulk_populate(db_url, clip, n)


def set_reviews_per_item(db_url: str, k: int) -> None:
    from db.engine import dispose_engines
    from rbft_core.review.adjudication import change_settings
    from rbft_core.review.workspace import dataset_names

    (name,) = dataset_names(db_url)
    print(f"dataset {name}: {change_settings(db_url, name, 'bench', reviews_per_item=k)}", flush=True)
    dispose_engines()


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
  const counts = () => (document.querySelector((prepare && prepare.counts) || "#rv-counts") || {}).innerText || "";
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
  if (prepare) {  // also: until the new frame strip has loaded, and until the counts (sent with the item) changed
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


def measure(url: str, iterations: int, warmup: int, pause_s: float, k: int = 1) -> dict[str, list[float]]:
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
                                               {"selector": "#rv-dim-1 textarea", "value": f"edited subjects {i}",
                                                "counts": "#rv-counts" if k == 1 else "#rv-place"}])
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
    parser.add_argument("--videos", type=int, nargs="+", default=[20000, 200000], help="dataset sizes, side by side")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pause-ms", type=float, default=500.0, help="idle time before each timed click")
    parser.add_argument("--k", type=int, default=1, help="reviews per item of the dataset (default 1; above 1 each "
                        "save is the reviewer's own response)")
    parser.add_argument("--serve", nargs=2, metavar=("DB_URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    results = {}
    for videos in args.videos:
        results[videos] = run_size(videos, args)
        report(results[videos]["times"], videos)
        print(f"(each timed click after {args.pause_ms:.0f} ms idle; {videos:,} rows inserted in "
              f"{results[videos]['insert_s']:.1f} s)\n", flush=True)
    if len(results) > 1:
        side_by_side(results)
    return 0


def run_size(videos: int, args: argparse.Namespace) -> dict:
    from tests.helpers import make_video
    from tests.review_world import free_port

    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        root = Path(tmp)
        os.environ["RBFT_DATA_DIR"] = str(root / "data")
        clip = make_video(root / "clip.mp4", num_frames=16, size=(320, 240), fps=8)
        db_url = f"sqlite:///{root / 'bench.db'}"
        seconds = populate(db_url, clip, videos)
        print(f"database: {videos:,} videos + suggestions inserted in {seconds:.1f} s", flush=True)
        if args.k != 1:
            set_reviews_per_item(db_url, args.k)
        port = free_port()
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        server = subprocess.Popen([sys.executable, __file__, "--serve", db_url, str(port)], env=env, cwd=str(REPO),
                                  stdout=open(root / "server.log", "wb"), stderr=subprocess.STDOUT)
        try:
            _wait_up(f"http://127.0.0.1:{port}/", server)
            times = measure(f"http://127.0.0.1:{port}/", args.iterations, args.warmup, args.pause_ms / 1000, args.k)
        finally:
            server.terminate()
            server.wait(timeout=20)
    return {"times": times, "insert_s": seconds}


def side_by_side(results: dict) -> None:
    """One line per figure, one column per size: how each cost grows with the dataset."""
    sizes = sorted(results)
    rows = [("insert N videos + suggestions (s)", lambda r: r["insert_s"])]
    for name, key in (("echo floor", "echo"), ("save edit + next", "save_next"),
                      ("... until frames shown", "save_next_frames"), ("... until counts shown", "save_next_counts")):
        rows.append((f"{name} p50 (ms)", lambda r, k=key: pct(r["times"][k], 0.5)))
        rows.append((f"{name} p95 (ms)", lambda r, k=key: pct(r["times"][k], 0.95)))
    rows.append(("save+next above the floor p50 (ms)",
                 lambda r: pct(r["times"]["save_next"], 0.5) - pct(r["times"]["echo"], 0.5)))
    rows.append(("counts after the item p50 (ms)", lambda r: pct(_after(r["times"]), 0.5)))
    rows.append(("counts after the item p95 (ms)", lambda r: pct(_after(r["times"]), 0.95)))
    rows.append(("ratio p95 save+next / echo", lambda r: pct(r["times"]["save_next"], 0.95) / pct(r["times"]["echo"], 0.95)))
    print("how each cost grows with the dataset")
    print(f"{'':40}" + "".join(f"{n:>14,}" for n in sizes))
    for name, value in rows:
        print(f"{name:40}" + "".join(f"{value(results[n]):14.2f}" for n in sizes))
    print("goals at 200,000: ratio <= 1.3x, counts <= 100 ms after the item, insert <= 60 s")


def _after(times: dict[str, list[float]]) -> list[float]:
    return [max(0.0, c - s) for c, s in zip(times["save_next_counts"], times["save_next"])]


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
    print(f"  ... until counts shown p50 {counts50:7.1f} ms   p95 {counts95:7.1f} ms   (sent with the item)")
    after = _after(times)
    print(f"  ... counts after the item p50 {pct(after, 0.5):7.1f} ms   p95 {pct(after, 0.95):7.1f} ms   (goal <= 100 ms)")
    print(f"ratio p95 save/echo: {save95 / echo95:.2f}x (goal <= 1.3x at 200,000); p50: {save50 / echo50:.2f}x")


if __name__ == "__main__":
    sys.exit(main())

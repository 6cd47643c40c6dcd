"""A small dataset ready for review: generated videos, imported, with realistic suggestions (no model).

Suggestions go through ``db.queries.add_suggestion`` like generation's, so doubt scores are real. The
queue order of the default world is known: the parse failure, then the contradiction, then the rest
by likelihood (lowest first).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional


__all__ = ["SUGGESTIONS", "XSS", "make_review_world", "queue_order", "free_port", "start_app", "stop_app", "box"]

REPO_ROOT = Path(__file__).resolve().parents[1]
GEN_PARAMS = {"num_frames": 8, "max_pixels": 128 * 28 * 28, "max_new_tokens": 160, "do_sample": False}

# (external id, label, suggestion fields); queue order: clip_2 (parse failed), clip_0 (contradiction), clip_1.
SUGGESTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("clip_0", "abnormal", dict(
        subjects="a man in a dark hoodie; a parcel on the doormat",
        attributes="adult, dark hoodie, hood up, carries a large backpack; one brown cardboard box",
        actions="walks up the path, looks around twice, picks up the parcel and leaves quickly",
        scenes="front porch of a house, daylight, doorbell camera looking down at the step",
        conclusion="The video shows normal activity by a courier.", parse_status="ok", mean_logprob=-0.6)),
    ("clip_1", "normal", dict(
        subjects="a woman and a small dog",
        attributes="adult in a red raincoat; small white terrier on a lead",
        actions="the woman unlocks the door and both go inside",
        scenes="front door, evening, porch light on, fixed wall camera",
        conclusion="This is normal: a resident comes home with her dog.", parse_status="ok", mean_logprob=-3.2)),
    ("clip_2", "abnormal", dict(
        subjects="", attributes="", actions="", scenes="", conclusion="",
        raw_text="I'm sorry, the frames show a {blurry", parse_status="failed", mean_logprob=-1.1)),
]

# What each clip shows (rbft_core.demo renders it): close to what its suggestion says.
SCENES = [
    dict(scene="porch", night=False, subject="person", action="picking up a package", size="medium",
         clothing="a grey coat", package=True),
    dict(scene="porch", night=True, subject="dog", action="approaching the door", size="small"),
    dict(scene="driveway", night=False, subject="person", action="walking by", size="large", clothing="a red jacket"),
]

# The world's datasets keep the paper's four dimensions, in the form's boxes 1-4 (ui.review_forms.box_id).
FOUR = ("subjects", "attributes", "actions", "scenes")


def box(dim: str, prefix: str = "rv") -> str:
    """The CSS selector of the text area holding ``dim`` on the Review (``rv``) or Adjudicate (``adj``) tab."""
    return f"#{prefix}-dim-{FOUR.index(dim) + 1} textarea"


XSS = '<img src=x onerror="alert(\'xss\')"><script>alert("boom")</script>'


def make_review_world(db_url: str, root: Path, *, dataset: str = "homes", xss: bool = False,
                      extra: int = 0) -> dict[str, int]:
    """Import ``3 + extra`` generated clips into ``dataset`` and add a suggestion to each.

    Returns external id -> review id. With ``xss`` the first clip's subjects hold markup and script.
    """
    from db import queries
    from db.engine import session_scope
    from rbft_core.data.importer import import_videos

    src = root / "videos"
    rows = list(SUGGESTIONS) + [(f"clip_{3 + i}", "normal", dict(SUGGESTIONS[1][2], mean_logprob=-0.2 - i / 10))
                                for i in range(extra)]
    lines = ["path,label,split,id"]
    for i, (ext, label, _) in enumerate(rows):
        _scene_clip(src / f"{ext}.mp4", SCENES[i % len(SCENES)], seed=10 + i)
        lines.append(f"{ext}.mp4,{label},train,{ext}")
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_videos(db_url, dataset, src, manifest=manifest, preset="smart-home", labels=["normal", "abnormal"])
    assert report.imported == len(rows), report.failed
    out = {}
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        for ext, _label, fields in rows:
            video = queries.find_video_by_external_id(s, ds.id, ext)
            fields = dict(fields)
            if xss and ext == "clip_0":
                fields["subjects"] = XSS
            fields.setdefault("raw_text", str(fields))
            queries.add_suggestion(s, video.id, model_id="Qwen/Qwen2.5-VL-7B-Instruct", prompt_version="rationale-v1",
                                   label_hint=True, gen_params=dict(GEN_PARAMS), **fields)
        s.flush()
        for ext, _label, _fields in rows:
            video = queries.find_video_by_external_id(s, ds.id, ext)
            out[ext] = video.review.id
    return out


def _scene_clip(path: Path, scene: dict[str, Any], seed: int, num_frames: int = 16, fps: int = 8) -> Path:
    """A rendered home-camera clip (H.264 through PyAV) instead of noise, so screenshots are readable."""
    import av

    from rbft_core.demo import ClipSpec, render_clip

    frames = render_clip(ClipSpec(clip_id=path.stem, seed=seed, **scene), num_frames=num_frames, size=(320, 240))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(db_url: str, data_dir: Path, port: Optional[int] = None, *, extra_args: tuple[str, ...] = (),
              script: Optional[Path] = None, timeout_s: float = 60.0) -> tuple[subprocess.Popen, str]:
    """``python app.py --port P --db URL --data-dir DIR`` as a real subprocess; returns (process, base URL)."""
    port = port or free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO_ROOT),
               OMP_NUM_THREADS="1")
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / f"app-{port}.log", "wb")
    cmd = [sys.executable, str(script or REPO_ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port),
           "--db", db_url, "--data-dir", str(data_dir), *extra_args]
    proc = subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.25)
    stop_app(proc)
    raise RuntimeError(f"app did not answer at {url} within {timeout_s} s; see {log.name}")


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def queue_order(db_url: str, flt) -> list[int]:
    """The review ids of a queue in order, walked with ``neighbour`` until it wraps around."""
    from rbft_core.review import workspace

    order, current = [], None
    while True:
        current = workspace.neighbour(db_url, flt, current)
        if current is None or current in order:
            return order
        order.append(current)

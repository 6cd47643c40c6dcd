"""Benchmark: 16-frame uniform sampling from a 60 s 1280x720 30 fps H.264 clip.

Compares the project's ``sample_frames`` (no cache) against two baselines that produce the same 16 frames
at the same output size:

- ``moviepy``: naive ``VideoFileClip(..., target_resolution=...).iter_frames()`` keeping the frames needed
  (ffmpeg decodes and scales every frame in a subprocess);
- ``pyav-seek``: PyAV seeking to each of the 16 timestamps (backward to the keyframe, decode forward to the
  pts), threading on as in the project, converting only the kept frames with the same swscale resize.

Also times a cached read (a fresh ``FrameCache`` whose in-memory LRU is off, so each read hits the .npy).

Run: ``.venv/bin/python bench/bench_sampling.py`` (the clip is generated once into bench/out/).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rbft_core.data.video import FrameCache, SampleSpec, probe_video, sample_frames, smart_resize  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "out"
CLIP = OUT_DIR / "bench_60s_720p30.mp4"
DURATION_S, FPS, WIDTH, HEIGHT = 60, 30, 1280, 720
NUM_FRAMES = 16
REPEATS = 3
CACHED_REPEATS = 20


def make_clip(path: Path) -> None:
    """A moving scene (drifting gradients, bouncing boxes) so inter frames carry real work.

    No per-pixel noise: random grain turns ultrafast x264 into ~15 Mbit/s, far above real 720p footage.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "g": "250"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(DURATION_S * FPS):
            img = np.roll(base, (2 * i, 4 * i), axis=(0, 1))  # a drifting gradient: every pixel changes
            for k in range(4):
                x = int((WIDTH - 160) * (0.5 + 0.5 * np.sin(0.03 * i * (k + 1) + k)))
                y = int((HEIGHT - 120) * (0.5 + 0.5 * np.cos(0.02 * i * (k + 2) + k)))
                img[y : y + 120, x : x + 160] = (60 * k, 255 - 60 * k, (i * 7) % 256)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)


def run_project(path: Path, spec: SampleSpec) -> np.ndarray:
    return sample_frames(path, spec).frames


def run_moviepy(path: Path, indices: list[int], size_hw: tuple[int, int]) -> np.ndarray:
    from moviepy import VideoFileClip

    wanted = {}
    want = set(indices)
    with VideoFileClip(str(path), audio=False, target_resolution=(size_hw[1], size_hw[0])) as clip:
        for i, frame in enumerate(clip.iter_frames()):
            if i in want:
                wanted[i] = frame
            if i >= max(want):
                break
    return np.stack([wanted[i] for i in indices])


def run_pyav_seek(path: Path, indices: list[int], size_hw: tuple[int, int]) -> np.ndarray:
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps, tb, start = float(stream.average_rate), stream.time_base, stream.start_time or 0
        for idx in indices:
            t = idx / fps
            container.seek(start + int(t / tb), stream=stream, backward=True)
            for frame in container.decode(stream):
                if float((frame.pts - start) * tb) >= t - 0.5 / fps:
                    out.append(frame.to_ndarray(format="rgb24", width=size_hw[1], height=size_hw[0],
                                                interpolation="BICUBIC"))
                    break
    return np.stack(out)


def median_time_s(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    if not CLIP.exists():
        t0 = time.perf_counter()
        print(f"generating {CLIP} ...", flush=True)
        make_clip(CLIP)
        print(f"  generated in {time.perf_counter() - t0:.1f} s", flush=True)
    probe_s, info = median_time_s(lambda: probe_video(CLIP), 5)
    probe_ms = probe_s * 1000
    with av.open(str(CLIP)) as container:
        num_keyframes = sum(e.is_keyframe for e in container.streams.video[0].index_entries)
    print(f"clip: {info.width}x{info.height} {info.fps:g} fps {info.duration_s:.1f} s {info.num_frames} frames, "
          f"{num_keyframes} keyframes ({CLIP.stat().st_size / 1e6:.1f} MB); probe {probe_ms:.1f} ms (median of 5)")

    spec = SampleSpec(num_frames=NUM_FRAMES)
    size_hw = smart_resize(info.height, info.width, spec.size_factor, spec.min_pixels, spec.max_pixels)
    reference = sample_frames(CLIP, spec)
    indices = reference.frame_indices
    print(f"{NUM_FRAMES} frames at {size_hw[1]}x{size_hw[0]}, indices {indices}")

    # Rounds interleave the three methods so a burst of load on shared cores hits all of them alike.
    runs = {"project": lambda: run_project(CLIP, spec), "pyav-seek": lambda: run_pyav_seek(CLIP, indices, size_hw),
            "moviepy": lambda: run_moviepy(CLIP, indices, size_hw)}
    times = {name: [] for name in runs}
    results = {}
    for _ in range(REPEATS):
        for name, fn in runs.items():
            t, results[name] = median_time_s(fn, 1)
            times[name].append(t)
    t_project, t_seek, t_moviepy = (statistics.median(times[n]) for n in ("project", "pyav-seek", "moviepy"))
    frames_project, frames_seek, frames_moviepy = (results[n] for n in ("project", "pyav-seek", "moviepy"))
    assert np.array_equal(frames_project, frames_seek), "project and pyav-seek disagree on the frames"
    diff = np.abs(frames_project.astype(int) - frames_moviepy.astype(int)).mean()
    print(f"mean |project - moviepy| = {diff:.1f} grey levels (moviepy scales in ffmpeg)")

    fastest_name, fastest = min([("moviepy", t_moviepy), ("pyav-seek", t_seek)], key=lambda kv: kv[1])
    for name, key in [("project sample_frames", "project"), ("pyav-seek", "pyav-seek"),
                      ("moviepy iter_frames", "moviepy")]:
        t, runs_s = statistics.median(times[key]), ", ".join(f"{x:.2f}" for x in times[key])
        print(f"  {name:22s} {t:8.3f} s   {t / fastest:5.2f}x of fastest baseline ({fastest_name})   runs: {runs_s}")

    with tempfile.TemporaryDirectory() as tmp:
        writer = FrameCache(Path(tmp))
        sha = "0" * 64
        sample_frames(CLIP, spec, sha256=sha, cache=writer)
        reader = FrameCache(Path(tmp), max_items_in_memory=0)  # every read goes to disk
        t_cached, hit = median_time_s(lambda: sample_frames(CLIP, spec, sha256=sha, cache=reader), CACHED_REPEATS)
        assert np.array_equal(hit.frames, frames_project)
        t_memory, _ = median_time_s(lambda: sample_frames(CLIP, spec, sha256=sha, cache=writer), CACHED_REPEATS)
    print(f"  cached read (disk .npy)   {t_cached * 1000:6.2f} ms; in-memory LRU hit {t_memory * 1000:.3f} ms")
    print(f"sampling: project/fastest = {t_project / fastest:.2f}x (goal <= 1.2x); "
          f"cached read = {t_cached * 1000:.1f} ms (goal < 10 ms)")


if __name__ == "__main__":
    main()

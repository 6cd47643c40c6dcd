"""Small real media files written per test (PyAV), good and deliberately broken."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = [
    "make_video",
    "make_zero_byte",
    "make_text_as_mp4",
    "make_truncated",
    "make_audio_only",
    "make_still_png_as_mp4",
]


def make_video(
    path: str | os.PathLike[str],
    num_frames: int = 8,
    size: tuple[int, int] = (64, 48),
    fps: int = 8,
    color_seed: int = 0,
    codec: str = "libx264",
) -> Path:
    """Write a tiny H.264 (or ``codec``) video; ``color_seed`` makes the content (and its sha256) unique."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    rng = np.random.default_rng(color_seed)
    base = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "30"}
        for i in range(num_frames):
            frame = np.roll(base, shift=i * 4, axis=1)  # something moves, so frames differ
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_zero_byte(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def make_text_as_mp4(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is a shopping list, not a video\neggs\nmilk\n", encoding="utf-8")
    return path


def make_truncated(path: str | os.PathLike[str], color_seed: int = 99) -> Path:
    """The first half of a real MP4 (its index, written last, is gone)."""
    path = Path(path)
    whole = make_video(path.with_name(path.stem + "-whole.mp4"), num_frames=24, color_seed=color_seed)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_audio_only(path: str | os.PathLike[str], duration_s: float = 0.5, rate: int = 16000) -> Path:
    """An MP4 holding a short AAC sine tone and no video stream."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        samples_per_frame = 1024
        total = int(duration_s * rate)
        t = np.arange(total, dtype=np.float32) / rate
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, total, samples_per_frame):
            chunk = tone[start : start + samples_per_frame]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_still_png_as_mp4(path: str | os.PathLike[str], color_seed: int = 0) -> Path:
    """A PNG image saved under a video name."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(color_seed).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG")
    return path

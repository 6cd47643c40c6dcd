"""rbft_core.data.video: probing (good and broken files), frame sampling, the frame cache, clips and previews."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from rbft_core.data import video as V
from rbft_core.errors import ConfigError, DataError
from rbft_core.data.clips import make_preview, write_clip
from rbft_core.data.video import FrameCache, SampleSpec, probe_video, sample_frames, smart_resize
from tests.helpers import (
    make_audio_only,
    make_still_png_as_mp4,
    make_text_as_mp4,
    make_truncated,
    make_video,
    make_zero_byte,
)

try:  # imported at collection (a few seconds, shared with the model tests) so no single test pays for it
    from transformers.video_utils import VideoMetadata
except ImportError:  # pragma: no cover - transformers is a hard dependency of the project
    VideoMetadata = None

# ------------------------------------------------------------------------------------------ helpers


def _index_colour(i: int) -> tuple[int, int, int]:
    """Frame i is one flat colour that survives H.264 + resizing (error < 4 levels): index = R/8 + 32 * G/8."""
    return (8 * (i % 32), 8 * (i // 32), 128)


def _decode_index(frame: np.ndarray) -> int:
    r, g = frame[..., 0].mean(), frame[..., 1].mean()
    return int(round(r / 8)) + 32 * int(round(g / 8))


def _make_indexed(path: Path, num_frames: int = 40, size: tuple[int, int] = (96, 64), fps: float = 10,
                  gop: int = 12, fmt: str | None = None, codec: str = "libx264", movflags: str | None = None,
                  pts_s: list[float] | None = None) -> Path:
    """A clip whose frame i is coloured by its index; small GOP and B-frames so seeking is exercised.

    ``pts_s`` gives explicit presentation times (variable frame rate)."""
    w, h = size
    options = {"movflags": movflags} if movflags else {}
    with av.open(str(path), "w", format=fmt, options=options) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            stream.options = {"g": str(gop), "bf": "2", "preset": "veryfast", "crf": "18"}
        else:  # mpeg4 / vp9 at a generous rate: their defaults blur the colour code
            stream.options, stream.bit_rate = {"g": str(gop), "qmax": "4"}, 4_000_000
        if pts_s is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), _index_colour(i), np.uint8), format="rgb24")
            if pts_s is not None:
                frame.pts, frame.time_base = int(round(pts_s[i] * 1000)), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _make_jpeg_as_mp4(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(path, format="JPEG")
    return path


def _cut(path: Path, fraction: float, out: Path) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


# ------------------------------------------------------------------------------------------ probe


def test_probe_generated_clip(tmp_path):
    info = probe_video(make_video(tmp_path / "a.mp4", num_frames=16, size=(64, 48), fps=8))
    assert (info.width, info.height, info.num_frames, info.codec) == (64, 48, 16, "h264")
    assert info.fps == pytest.approx(8.0)
    assert info.duration_s == pytest.approx(2.0, abs=0.01)
    assert info.has_audio is False and info.pix_fmt == "yuv420p"


def test_probe_real_clips(shared_dir):
    clips = shared_dir / "real" / "smarthome-bench"
    ring = probe_video(clips / "ring_00037.mp4")
    assert (ring.width, ring.height, ring.codec, ring.has_audio) == (640, 360, "h264", True)
    assert ring.fps == pytest.approx(15.0)
    assert ring.duration_s == pytest.approx(57.2, abs=0.5)
    assert ring.num_frames == pytest.approx(57.2 * 15, abs=2)
    example = probe_video(clips / "example_video.mp4")
    assert example.fps == pytest.approx(23.976, abs=0.01)
    assert example.duration_s == pytest.approx(15.3, abs=0.3)
    assert (example.width, example.height) == (640, 360)


def test_probe_real_clip_is_fast(shared_dir):
    import time

    path = shared_dir / "real" / "smarthome-bench" / "ring_00037.mp4"
    probe_video(path)  # warm the page cache
    start = time.perf_counter()
    probe_video(path)
    assert time.perf_counter() - start < 0.3  # typically ~15 ms; generous for two shared cores


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda p: p / "missing.mp4", r"missing\.mp4 does not exist; check the path"),
        (lambda p: make_zero_byte(p / "zero.mp4"), r"zero\.mp4 is empty \(0 bytes\); re-copy or remove it"),
        (lambda p: make_text_as_mp4(p / "notes.mp4"), r"notes\.mp4 is not a media file"),
        (lambda p: make_truncated(p / "cut.mp4"), r"cut\.mp4 is truncated or corrupt"),
        (lambda p: make_audio_only(p / "tone.mp4"), r"tone\.mp4 has no video stream .*; re-encode or remove it"),
        (lambda p: make_video(p / "one.mp4", num_frames=1), r"one\.mp4 has only 1 frame; a video needs at least 2"),
        (lambda p: make_still_png_as_mp4(p / "png.mp4"), r"png\.mp4 is a still image \(PNG\)"),
        (lambda p: _make_jpeg_as_mp4(p / "jpg.mp4"), r"jpg\.mp4 is a still image \(JPEG\)"),
    ],
    ids=["missing", "zero-byte", "text", "truncated-no-index", "audio-only", "one-frame", "png", "jpeg"],
)
def test_probe_bad_files_name_the_file_and_the_fix(tmp_path, make, pattern):
    path = make(tmp_path)
    with pytest.raises(DataError, match=pattern):
        probe_video(path)
    if "has only 1 frame" not in pattern:  # the sampler reads what it can: one frame is repeated, not refused
        with pytest.raises(DataError, match=pattern):
            sample_frames(path, SampleSpec(num_frames=2))


def test_probe_catches_truncated_data_behind_a_complete_index(tmp_path):
    # faststart puts the index first, so the container opens and lists every frame; the data stops early.
    whole = _make_indexed(tmp_path / "whole.mp4", num_frames=120, gop=12, movflags="faststart")
    cut = _cut(whole, 0.6, tmp_path / "cut.mp4")
    with pytest.raises(DataError, match=r"cut\.mp4 is truncated .*re-copy it from the source or re-encode it"):
        probe_video(cut)


# ------------------------------------------------------------------------------------------ sampling


def test_uniform_sampling_returns_the_right_frames(tmp_path):
    path = _make_indexed(tmp_path / "idx.mp4", num_frames=120, fps=10, gop=12)
    video = sample_frames(path, SampleSpec(num_frames=8))
    expected = [int((i + 0.5) * 120 / 8) for i in range(8)]  # centre of 8 equal segments
    assert video.frame_indices == expected
    assert [_decode_index(f) for f in video.frames] == expected
    assert video.timestamps_s == pytest.approx([i / 10 for i in expected])
    assert all(a < b for a, b in zip(video.timestamps_s, video.timestamps_s[1:]))
    assert (video.source_fps, video.total_num_frames, video.source_size) == (10.0, 120, (96, 64))
    assert video.frames.dtype == np.uint8 and video.notes == []


@pytest.mark.parametrize("fmt, codec, suffix", [(None, "libx264", "mp4"), ("matroska", "libx264", "mkv"),
                                                (None, "mpeg4", "avi"), ("webm", "libvpx-vp9", "webm")])
def test_sampling_matches_sequential_decode_across_containers(tmp_path, fmt, codec, suffix):
    # 12 s at 10 fps with a keyframe every 12 frames: the sampler seeks as well as decoding forward.
    path = _make_indexed(tmp_path / f"c.{suffix}", num_frames=120, fps=10, gop=12, fmt=fmt, codec=codec)
    video = sample_frames(path, SampleSpec(num_frames=16))
    assert [_decode_index(f) for f in video.frames] == video.frame_indices


def test_variable_frame_rate_uses_real_timestamps(tmp_path):
    pts_s = [0.0, 0.1, 0.2, 0.3, 1.0, 1.1, 1.2, 2.5, 2.6, 2.7, 2.8, 2.9]  # gaps: the stream is VFR
    path = _make_indexed(tmp_path / "vfr.mp4", num_frames=len(pts_s), fps=10, gop=4, pts_s=pts_s)
    video = sample_frames(path, SampleSpec(num_frames=4))
    for frame, t in zip(video.frames, video.timestamps_s):
        assert t == pytest.approx(pts_s[_decode_index(frame)], abs=1e-3)  # each timestamp is its frame's pts
    assert all(a <= b for a, b in zip(video.timestamps_s, video.timestamps_s[1:]))


def test_fps_sampling_follows_the_rate_and_the_cap(tmp_path):
    path = _make_indexed(tmp_path / "idx.mp4", num_frames=120, fps=10, gop=12)  # 12 s
    one_fps = sample_frames(path, SampleSpec(num_frames=None, fps=1.0))
    assert one_fps.num_frames == 12
    assert one_fps.timestamps_s == pytest.approx([i + 0.5 for i in range(12)])
    capped = sample_frames(path, SampleSpec(num_frames=None, fps=5.0, max_frames=8))
    assert capped.num_frames == 8
    assert capped.frame_indices == [int((i + 0.5) * 120 / 8) for i in range(8)]
    assert [_decode_index(f) for f in capped.frames] == capped.frame_indices
    odd_cap = sample_frames(path, SampleSpec(num_frames=None, fps=5.0, max_frames=7))
    assert odd_cap.num_frames == 6  # the cap is a hard bound: rounded down to even instead of padded past it


def test_even_frames_pad_by_repeating_the_last(tmp_path):
    path = _make_indexed(tmp_path / "idx.mp4", num_frames=30, fps=10, gop=12)
    even = sample_frames(path, SampleSpec(num_frames=3))
    assert even.num_frames == 4 and even.frame_indices[-1] == even.frame_indices[-2]
    assert np.array_equal(even.frames[-1], even.frames[-2])
    odd = sample_frames(path, SampleSpec(num_frames=3, even_frames=False))
    assert odd.num_frames == 3


def test_more_frames_than_the_clip_has_repeats_frames(tmp_path):
    path = _make_indexed(tmp_path / "short.mp4", num_frames=4, fps=10, gop=12)
    video = sample_frames(path, SampleSpec(num_frames=8))
    assert video.frame_indices == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [_decode_index(f) for f in video.frames] == video.frame_indices


def test_truncated_end_repeats_the_last_decoded_frame_and_says_so(tmp_path):
    whole = _make_indexed(tmp_path / "whole.mp4", num_frames=120, fps=10, gop=12, movflags="faststart")
    cut = _cut(whole, 0.6, tmp_path / "cut.mp4")
    video = sample_frames(cut, SampleSpec(num_frames=8))
    assert video.num_frames == 8
    assert video.notes and "last decoded frame was repeated" in video.notes[0]
    decoded = [_decode_index(f) for f in video.frames]
    assert decoded[0] == video.frame_indices[0]
    assert decoded == sorted(decoded) and decoded[-1] == decoded[-2]


def test_real_clip_frames_equal_a_full_sequential_decode(shared_dir):
    # example_video.mp4 has B-frames and three keyframes: seeking + forward decoding must pick the same frames
    # a plain decode of every frame would.
    path = shared_dir / "real" / "smarthome-bench" / "example_video.mp4"
    video = sample_frames(path, SampleSpec(num_frames=16))
    h, w = video.frames.shape[1:3]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = {}
        for i, f in enumerate(container.decode(stream)):
            if i in video.frame_indices:
                array = f.to_ndarray(format="rgb24", width=w, height=h, interpolation="BICUBIC")
                decoded[i] = (float(f.pts * stream.time_base), array)
            if i == video.frame_indices[-1]:
                break
    assert video.timestamps_s == pytest.approx([decoded[i][0] for i in video.frame_indices], abs=1e-5)
    assert np.array_equal(video.frames, np.stack([decoded[i][1] for i in video.frame_indices]))


def test_resized_frames_fit_the_patch_grid(shared_dir):
    spec = SampleSpec(num_frames=4, max_pixels=64 * 28 * 28)
    video = sample_frames(shared_dir / "real" / "smarthome-bench" / "example_video.mp4", spec)
    _, h, w, c = video.frames.shape
    assert c == 3 and h % 28 == 0 and w % 28 == 0
    assert spec.min_pixels <= h * w <= spec.max_pixels
    assert abs(w / h - 640 / 360) < 0.15


@pytest.mark.parametrize(
    "hw, expected",  # values from transformers' Qwen2-VL smart_resize with factor 28, 3136..100352 pixels
    [((360, 640), (224, 420)), ((720, 1280), (224, 420)), ((48, 64), (56, 56)), ((1080, 1920), (224, 420)),
     ((28, 28), (56, 56)), ((252, 448), (224, 420)), ((1000, 100), (980, 84)), ((10, 300), (28, 308)),
     ((480, 640), (252, 364)), ((2160, 3840), (224, 420))],
)
def test_smart_resize_matches_qwen(hw, expected):
    assert smart_resize(*hw, factor=28, min_pixels=4 * 28 * 28, max_pixels=128 * 28 * 28) == expected


@pytest.mark.skipif(VideoMetadata is None, reason="transformers is not installed")
def test_metadata_fits_transformers_video_metadata(tmp_path):
    import dataclasses

    path = _make_indexed(tmp_path / "idx.mp4", num_frames=40, fps=10, gop=12)
    video = sample_frames(path, SampleSpec(num_frames=4))
    assert set(video.metadata()) <= {f.name for f in dataclasses.fields(VideoMetadata)}
    meta = VideoMetadata(**video.metadata())
    assert meta.timestamps == pytest.approx(video.timestamps_s, abs=0.051)
    assert meta.sampled_fps == pytest.approx(4 / 40 * 10)


# ------------------------------------------------------------------------------------------ cache


def test_cache_hit_is_identical_and_does_not_decode(tmp_path, monkeypatch):
    path = _make_indexed(tmp_path / "idx.mp4", num_frames=40, fps=10, gop=12)
    spec = SampleSpec(num_frames=8)
    sha = V.file_sha256(path)
    first = sample_frames(path, spec, sha256=sha, cache=FrameCache(tmp_path / "cache"))

    calls = []
    monkeypatch.setattr(V, "_decode_samples", lambda *a, **k: calls.append(a) or pytest.fail("decoded on a hit"))
    for cache in (FrameCache(tmp_path / "cache"), FrameCache(tmp_path / "cache", max_items_in_memory=0)):
        hit = sample_frames(path, spec, sha256=sha, cache=cache)  # from disk
        again = sample_frames(path, spec, sha256=sha, cache=cache)  # from memory (or disk when LRU is off)
        for got in (hit, again):
            assert np.array_equal(got.frames, first.frames)
            assert got.timestamps_s == first.timestamps_s and got.frame_indices == first.frame_indices
            assert got.metadata() == first.metadata()
        hit.frames[:] = 0  # each reader owns its copy: painting into it (masking) leaves the cache intact
        hit.frame_indices.append(-1)
        again = sample_frames(path, spec, sha256=sha, cache=cache)
        assert np.array_equal(again.frames, first.frames) and again.frame_indices == first.frame_indices
    assert calls == []
    files = sorted(p.suffix for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert files == [".json", ".npy"]  # no temporary files left behind


def test_cache_key_changes_with_spec_and_content(tmp_path):
    path = _make_indexed(tmp_path / "idx.mp4", num_frames=40, fps=10, gop=12)
    cache = FrameCache(tmp_path / "cache")
    a = sample_frames(path, SampleSpec(num_frames=4), cache=cache)  # sha computed from the content
    b = sample_frames(path, SampleSpec(num_frames=6), cache=cache)
    assert (a.num_frames, b.num_frames) == (4, 6)
    assert SampleSpec(num_frames=4).key() != SampleSpec(num_frames=None, fps=4).key()
    assert SampleSpec(num_frames=4).key() == SampleSpec(num_frames=4).key()


def test_damaged_cache_entry_is_a_miss(tmp_path):
    path = _make_indexed(tmp_path / "idx.mp4", num_frames=40, fps=10, gop=12)
    spec, sha = SampleSpec(num_frames=4), "ab" * 32
    sample_frames(path, spec, sha256=sha, cache=FrameCache(tmp_path / "cache"))
    npy = next((tmp_path / "cache").rglob("*.npy"))
    npy.write_bytes(npy.read_bytes()[:100])
    cache = FrameCache(tmp_path / "cache")
    assert cache.get(sha, spec) is None
    assert sample_frames(path, spec, sha256=sha, cache=cache).num_frames == 4
    sidecar = json.loads(next((tmp_path / "cache").rglob("*.json")).read_text())
    assert sidecar["frame_indices"] == [5, 15, 25, 35]


def test_cache_memory_is_bounded_by_bytes(tmp_path):
    path = _make_indexed(tmp_path / "idx.mp4", num_frames=40, fps=10, gop=12)
    one_entry = sample_frames(path, SampleSpec(num_frames=4)).frames.nbytes
    cache = FrameCache(tmp_path / "cache", max_bytes_in_memory=int(1.5 * one_entry))
    for n in (2, 4, 6):  # different sizes; the budget holds at most one 4-frame entry
        sample_frames(path, SampleSpec(num_frames=n), sha256="cd" * 32, cache=cache)
    assert cache._memory_bytes <= cache.max_bytes_in_memory and len(cache._memory) == 1
    assert sample_frames(path, SampleSpec(num_frames=2), sha256="cd" * 32, cache=cache).num_frames == 2  # disk


def test_cache_rejects_a_key_that_is_not_a_digest(tmp_path):
    with pytest.raises(ConfigError, match="sha256 must be a hex digest"):
        FrameCache(tmp_path).get("../../etc/passwd", SampleSpec())


def test_default_frame_cache_lives_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RBFT_DATA_DIR", str(tmp_path / "data"))
    cache = V.default_frame_cache()
    assert cache.root == (tmp_path / "data" / "cache" / "frames").resolve()
    assert V.default_frame_cache() is cache


# ------------------------------------------------------------------------------------------ spec validation


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(num_frames=0), r"num_frames must be >= 1, got 0"),
        (dict(num_frames=None, fps=0.0), r"fps must be > 0, got 0.0"),
        (dict(num_frames=None, fps=-1.0), r"fps must be > 0"),
        (dict(num_frames=8, fps=1.0), r"exactly one of num_frames or fps"),
        (dict(num_frames=None), r"exactly one of num_frames or fps"),
        (dict(num_frames=64), r"num_frames must be <= max_frames \(32\), got 64"),
        (dict(max_frames=0, num_frames=None, fps=1.0), r"max_frames must be >= 1, got 0"),
        (dict(min_pixels=10_000, max_pixels=5_000), r"max_pixels must be >= min_pixels \(10000\), got 5000"),
        (dict(min_pixels=100), r"min_pixels must be >= size_factor\*\*2"),
        (dict(size_factor=0), r"size_factor must be >= 1"),
    ],
)
def test_spec_validation_names_the_field(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        SampleSpec(**kwargs)


# ------------------------------------------------------------------------------------------ clips, previews


def test_write_clip_round_trip(tmp_path):
    frames = np.stack([np.full((37, 51, 3), _index_colour(i), np.uint8) for i in range(12)])  # odd size
    out = write_clip(frames, 6.0, tmp_path / "sub" / "clip.mp4")
    info = probe_video(out)
    assert (info.codec, info.pix_fmt, info.num_frames) == ("h264", "yuv420p", 12)
    assert (info.width, info.height) == (52, 38)  # padded to even
    assert info.fps == pytest.approx(6.0)
    video = sample_frames(out, SampleSpec(num_frames=4, even_frames=False, min_pixels=28 * 28))
    assert [_decode_index(f) for f in video.frames] == video.frame_indices
    assert [p.name for p in out.parent.iterdir()] == ["clip.mp4"]


def test_write_clip_rejects_bad_input(tmp_path):
    with pytest.raises(DataError, match="frames must be uint8"):
        write_clip(np.zeros((2, 8, 8, 3), np.float32), 5, tmp_path / "a.mp4")
    with pytest.raises(DataError, match=r"frames must be an array \[T, H, W, 3\]"):
        write_clip(np.zeros((8, 8), np.uint8), 5, tmp_path / "a.mp4")
    with pytest.raises(ConfigError, match="out_path must end in .mp4"):
        write_clip(np.zeros((2, 8, 8, 3), np.uint8), 5, tmp_path / "a.gif")


def test_make_preview_transcodes_mpeg4_avi_to_h264_mp4(tmp_path):
    src = _make_indexed(tmp_path / "old.avi", num_frames=20, fps=10, codec="mpeg4")
    assert probe_video(src).codec == "mpeg4"
    preview = make_preview(src, tmp_path / "previews")
    assert preview.suffix == ".mp4" and preview.parent == tmp_path / "previews"
    info = probe_video(preview)
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", 96, 64)
    assert info.num_frames == pytest.approx(20, abs=1)
    assert make_preview(src, tmp_path / "previews") == preview  # cached by content hash


def test_make_preview_keeps_playable_files(tmp_path):
    mp4 = make_video(tmp_path / "a.mp4")
    assert make_preview(mp4, tmp_path / "previews") == mp4
    webm = _make_indexed(tmp_path / "b.webm", num_frames=10, fmt="webm", codec="libvpx-vp9")
    assert make_preview(webm, tmp_path / "previews") == webm
    assert not (tmp_path / "previews").exists()

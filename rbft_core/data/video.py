"""One data path for video: probe, sample frames (+ timestamps), frame cache, clips and previews.

Generation, both training stages, evaluation, attention and masking all call :func:`sample_frames`, so a
model sees the same frames, at the same size, with the same timestamps everywhere. Decoding uses PyAV.
The frame cache lives in ``rbft_core.data.frame_cache`` and clip writing (moviepy) in ``rbft_core.data.clips``; both
are re-exported here, so ``from rbft_core.data.video import ...`` is the one import for callers.

Sampling is a hybrid of seeking and sequential decoding: for each wanted frame we seek only when the
keyframe before it lies beyond where the decoder already is (so a seek saves work), otherwise we decode
forward; only the frames we keep are converted to RGB, and swscale resizes them during that conversion.
"""

from __future__ import annotations

import bisect
import math
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from rbft_core.data.clips import make_preview, write_clip
from rbft_core.errors import ConfigError, DataError
from rbft_core.data.frame_cache import FrameCache, default_frame_cache, file_sha256

if TYPE_CHECKING:  # PyAV is imported where frames are decoded, so the SampledVideo type loads without it
    import av

__all__ = [
    "VideoInfo",
    "probe_video",
    "SampleSpec",
    "smart_resize",
    "SampledVideo",
    "sample_frames",
    "FrameCache",
    "default_frame_cache",
    "file_sha256",
    "write_clip",
    "make_preview",
]

_SAMPLER_VERSION = 1  # bump when the sampling rule changes so cached frames are not reused
_STILL_FORMATS = {"image2", "image2pipe", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe"}
_STILL_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
_DEFAULT_SEEK_GAP_S = 4.0  # used only when the container has no keyframe index


# --------------------------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, read from its container (plus two decoded frames as a health check)."""

    duration_s: float
    fps: float
    width: int
    height: int
    num_frames: int
    codec: str
    has_audio: bool
    pix_fmt: str = ""
    container: str = ""


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path} does not exist; check the path or re-import the folder")
    if not path.is_file():
        raise DataError(f"{path} is not a file; point to a video file instead")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes); re-copy or remove it")
    with path.open("rb") as fh:
        head = fh.read(16)
    for magic, kind in _STILL_MAGIC.items():
        if head.startswith(magic):
            raise DataError(f"{path} is a still image ({kind}), not a video; convert it to a video or remove it")


def _looks_like_container(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(16)
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
        or head.startswith(b"\x1a\x45\xdf\xa3")  # Matroska / WebM
        or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
        or head.startswith((b"FLV", b"OggS", b"\x00\x00\x01\xba"))
    )


def _open(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open ``path`` and return its container and first video stream, or raise an actionable DataError."""
    import av

    _check_file(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        if _looks_like_container(path):
            raise DataError(
                f"{path} is truncated or corrupt (its container index cannot be read: {exc.__class__.__name__}); "
                "re-copy it from the source or re-encode it"
            ) from exc
        raise DataError(f"{path} is not a media file FFmpeg can read; check the file or remove it") from exc
    if container.format.name in _STILL_FORMATS:
        container.close()
        raise DataError(f"{path} is a still image, not a video; convert it to a video or remove it")
    if not container.streams.video:
        kind = "an audio-only file" if container.streams.audio else "a file without streams"
        container.close()
        raise DataError(f"{path} has no video stream ({kind}); re-encode or remove it")
    return container, container.streams.video[0]


@dataclass(frozen=True)
class _StreamMeta:
    fps: float
    duration_s: float
    num_frames: int
    start_pts: int
    time_base: Fraction
    exact_duration: bool  # False when only the container's duration (which may include audio) was known


def _tag_duration_s(stream) -> float | None:
    """Matroska/WebM muxers write the stream's length as a tag ("00:00:12.000000000") instead of a field."""
    raw = (stream.metadata or {}).get("DURATION") or (stream.metadata or {}).get("duration")
    match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", raw.strip()) if raw else None
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _stream_meta(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> _StreamMeta:
    import av

    time_base = stream.time_base or Fraction(1, 90000)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    exact = True
    if stream.duration:
        duration_s = float(stream.duration * time_base)
    elif (tagged := _tag_duration_s(stream)) is not None:
        duration_s = tagged
    else:
        duration_s, exact = (container.duration / av.time_base if container.duration else 0.0), False
    fps = float(rate) if rate else 0.0
    if stream.frames and duration_s > 0 and not fps:
        fps = stream.frames / duration_s
    num_frames = int(stream.frames) if stream.frames else int(round(duration_s * fps))
    if not fps:
        fps = 25.0  # no rate anywhere: a nominal value keeps timestamps monotonic
    if not duration_s:
        duration_s = num_frames / fps
    return _StreamMeta(fps, duration_s, max(num_frames, 0), stream.start_time or 0, time_base, exact)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read a video's metadata and check that its first and a late frame decode.

    Raises:
        DataError: the file is missing, empty, not media, a still image, audio-only, a single frame,
            truncated or corrupt. The message names the file and what to do about it.
    """
    path = Path(path)
    container, stream = _open(path)
    try:
        meta = _stream_meta(container, stream)
        if _decode_head(path, container, stream, expected_frames=meta.num_frames) < 2:
            raise DataError(f"{path} has only 1 frame; a video needs at least 2")
        _check_tail(path, container, stream, meta)
        ctx = stream.codec_context
        return VideoInfo(
            duration_s=round(meta.duration_s, 6),
            fps=meta.fps,
            width=ctx.width,
            height=ctx.height,
            num_frames=max(meta.num_frames, 2),
            codec=ctx.name,
            has_audio=bool(container.streams.audio),
            pix_fmt=ctx.pix_fmt or "",
            container=container.format.name,
        )
    finally:
        container.close()


def _decode_head(path: Path, container, stream, *, expected_frames: int) -> int:
    """Decode up to two frames from the start; return how many decoded."""
    import av

    decoded = 0
    try:
        for frame in container.decode(stream):
            decoded += 1
            if decoded == 2:
                break
    except av.error.FFmpegError as exc:
        if decoded == 0:
            raise DataError(
                f"{path} is truncated or corrupt (its first frame cannot be decoded); re-copy or re-encode it"
            ) from exc
    if decoded == 0:
        raise DataError(f"{path} is truncated or corrupt (no frame can be decoded); re-copy or re-encode it")
    if decoded == 1 and expected_frames >= 2:
        raise DataError(
            f"{path} is truncated or corrupt (only its first frame decodes, the container lists "
            f"{expected_frames}); re-copy or re-encode it"
        )
    return decoded


def _check_tail(path: Path, container, stream, meta: _StreamMeta) -> None:
    """Seek to the last keyframe, decode it and read packets to the end (no decoding) to catch truncation."""
    import av

    keyframes = _keyframe_pts(stream)
    target = keyframes[-1] if keyframes else meta.start_pts + int(0.9 * meta.duration_s / meta.time_base)
    decoded, last_pts = False, None
    try:
        container.seek(target, stream=stream, backward=True)
        for packet in container.demux(stream):
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is not None:
                last_pts = pts if last_pts is None else max(last_pts, pts)
            if not decoded and packet.size:
                decoded = bool(stream.codec_context.decode(packet)) or decoded
    except av.error.FFmpegError:
        pass
    stops_s = None if last_pts is None else float((last_pts - meta.start_pts) * meta.time_base)
    tolerance_s = max(1.0, 0.05 * meta.duration_s)
    stops_early = stops_s is not None and meta.exact_duration and stops_s < meta.duration_s - tolerance_s
    if stops_early or (stops_s is None and not decoded):
        where = "an unknown point" if stops_s is None else f"about {stops_s:.1f} s"
        raise DataError(
            f"{path} is truncated (the container says {meta.duration_s:.1f} s but the data stops at {where}); "
            "re-copy it from the source or re-encode it"
        )
    if not decoded and meta.num_frames > 2:
        # The keyframe may only come out after a few packets (decoder delay); a flush settles it.
        try:
            decoded = bool(stream.codec_context.decode(None))
        except av.error.FFmpegError:
            decoded = False
        if not decoded:
            raise DataError(
                f"{path} is corrupt (frames near its end cannot be decoded); re-copy it or re-encode it"
            )


def _keyframe_pts(stream) -> list[int]:
    import av

    try:
        return sorted(e.timestamp for e in stream.index_entries if e.is_keyframe)
    except (AttributeError, av.error.FFmpegError):
        return []


# --------------------------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class SampleSpec:
    """How to sample a video: a fixed count or a rate, and the pixel budget per frame.

    Args:
        num_frames: frames spread uniformly over the video (centre of equal segments). Exclusive with fps.
        fps: frames per second of video; capped at ``max_frames`` (then spread uniformly).
        max_frames: cap on the fps mode's count (rounded down to even with even_frames); num_frames may not
            exceed it.
        min_pixels / max_pixels: pixel budget per frame after resizing (Qwen2-VL's smart_resize rule).
        size_factor: height and width become multiples of this (Qwen: patch 14 * spatial merge 2).
        even_frames: pad to an even count by repeating the last frame (Qwen's temporal patch is 2).
    """

    num_frames: int | None = 8
    fps: float | None = None
    max_frames: int = 32
    min_pixels: int = 4 * 28 * 28
    max_pixels: int = 128 * 28 * 28
    size_factor: int = 28
    even_frames: bool = True

    def __post_init__(self) -> None:
        if (self.num_frames is None) == (self.fps is None):
            raise ConfigError(
                f"exactly one of num_frames or fps must be set, got num_frames={self.num_frames}, fps={self.fps}"
            )
        if self.max_frames < 1:
            raise ConfigError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.num_frames is not None:
            if isinstance(self.num_frames, bool) or int(self.num_frames) != self.num_frames:
                raise ConfigError(f"num_frames must be an integer, got {self.num_frames!r}")
            if self.num_frames < 1:
                raise ConfigError(f"num_frames must be >= 1, got {self.num_frames}")
            if self.num_frames > self.max_frames:
                raise ConfigError(
                    f"num_frames must be <= max_frames ({self.max_frames}), got {self.num_frames}; "
                    "raise max_frames or lower num_frames"
                )
        fps_ok = isinstance(self.fps, (int, float)) and math.isfinite(self.fps) and self.fps > 0
        if self.fps is not None and not fps_ok:
            raise ConfigError(f"fps must be > 0, got {self.fps}")
        if self.size_factor < 1:
            raise ConfigError(f"size_factor must be >= 1, got {self.size_factor}")
        if self.min_pixels < self.size_factor**2:
            raise ConfigError(
                f"min_pixels must be >= size_factor**2 ({self.size_factor**2}), got {self.min_pixels}"
            )
        if self.max_pixels < self.min_pixels:
            raise ConfigError(f"max_pixels must be >= min_pixels ({self.min_pixels}), got {self.max_pixels}")

    def key(self) -> str:
        """A stable, filename-safe string naming this spec (part of the frame-cache key)."""
        mode = f"n{self.num_frames}" if self.num_frames is not None else f"fps{format(float(self.fps), 'g')}"
        return (
            f"v{_SAMPLER_VERSION}_{mode}_max{self.max_frames}_px{self.min_pixels}-{self.max_pixels}"
            f"_f{self.size_factor}_{'even' if self.even_frames else 'any'}"
        )

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = 4 * 28 * 28,
                 max_pixels: int = 128 * 28 * 28) -> tuple[int, int]:
    """Qwen2-VL's resize rule: multiples of ``factor``, aspect kept, pixels within [min_pixels, max_pixels]."""
    if height < 1 or width < 1:
        raise DataError(f"frame size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > 200:
        raise DataError(f"aspect ratio of a {width}x{height} frame exceeds 200; crop the video first")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass
class SampledVideo:
    """Frames sampled from one video, resized for the model, with where they came from.

    ``frames`` is uint8 [T, H, W, 3] (RGB). ``timestamps_s`` are the decoded frames' presentation times
    (from pts * time_base, so variable frame rate is honoured); ``frame_indices`` index the source frames at
    ``source_fps``. ``notes`` records anything repaired (e.g. frames repeated past a truncated end).
    """

    frames: np.ndarray
    timestamps_s: list[float]
    frame_indices: list[int]
    source_fps: float
    duration_s: float
    source_size: tuple[int, int]
    total_num_frames: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def metadata(self) -> dict:
        """Keyword values for ``transformers.video_utils.VideoMetadata`` (pass as ``video_metadata``).

        Pass ``do_sample_frames=False`` to the processor as well: these frames are already sampled.
        """
        return {
            "total_num_frames": self.total_num_frames,
            "fps": self.source_fps,
            "width": self.source_size[0],
            "height": self.source_size[1],
            "duration": self.duration_s,
            "video_backend": "pyav",
            "frames_indices": list(self.frame_indices),
        }


def _target_indices(spec: SampleSpec, meta: _StreamMeta) -> list[int]:
    total = max(meta.num_frames, 1)
    if spec.num_frames is not None:
        count = spec.num_frames
    else:
        cap = spec.max_frames - (spec.max_frames % 2 if spec.even_frames and spec.max_frames > 1 else 0)
        count = min(max(1, round(meta.duration_s * spec.fps)), cap, total)
    indices = [min(total - 1, int((i + 0.5) * total / count)) for i in range(count)]
    if spec.even_frames and len(indices) % 2:
        indices.append(indices[-1])
    return indices


def sample_frames(path: str | os.PathLike, spec: SampleSpec | None = None, *, sha256: str | None = None,
                  cache: FrameCache | None = None) -> SampledVideo:
    """Sample frames from ``path`` as ``spec`` says; read from / write to ``cache`` when one is given.

    The cache key is the file's content hash (``sha256``; computed here when not given) plus ``spec.key()``.
    """
    spec = spec or SampleSpec()
    path = Path(path)
    if cache is None:
        return _decode_samples(path, spec)
    sha256 = sha256 or file_sha256(path)
    hit = cache.get(sha256, spec)
    if hit is None:
        hit = _decode_samples(path, spec)
        cache.put(sha256, spec, hit)
    return hit


def _decode_samples(path: Path, spec: SampleSpec) -> SampledVideo:
    container, stream = _open(path)
    try:
        meta = _stream_meta(container, stream)
        ctx = stream.codec_context
        src_w, src_h = ctx.width, ctx.height
        out_h, out_w = smart_resize(src_h, src_w, spec.size_factor, spec.min_pixels, spec.max_pixels)
        indices = _target_indices(spec, meta)
        wanted = sorted(set(indices))

        def convert(frame: av.VideoFrame) -> np.ndarray:
            return frame.to_ndarray(format="rgb24", width=out_w, height=out_h, interpolation="BICUBIC")

        decoder = _SeekingDecoder(path, container, stream, meta)
        picked, notes = decoder.pick([i / meta.fps for i in wanted], convert)
        by_index = dict(zip(wanted, picked))
        frames = np.stack([by_index[i][0] for i in indices])
        times = {i: by_index[i][1] for i in wanted}
        return SampledVideo(
            frames=frames,
            timestamps_s=[round(times[i], 6) for i in indices],
            frame_indices=indices,
            source_fps=meta.fps,
            duration_s=round(meta.duration_s, 6),
            source_size=(src_w, src_h),
            total_num_frames=meta.num_frames,
            notes=notes,
        )
    finally:
        container.close()


class _SeekingDecoder:
    """Decode the frames nearest to sorted target times, seeking only when a seek saves decoding."""

    def __init__(self, path: Path, container, stream, meta: _StreamMeta):
        self.path, self.container, self.stream, self.meta = path, container, stream, meta
        stream.thread_type = "AUTO"
        self.keyframes_s = [float((p - meta.start_pts) * meta.time_base) for p in _keyframe_pts(stream)]
        self.index_usable = len(self.keyframes_s) >= 2 or meta.duration_s <= _DEFAULT_SEEK_GAP_S
        self.half_frame_s = 0.5 / meta.fps
        self._frames: Iterator | None = None
        self.prev = self.cur = None  # (VideoFrame, time_s): last frame before / first frame at the target
        self.exhausted = False

    def pick(self, targets_s: list[float], convert) -> tuple[list[tuple[np.ndarray, float]], list[str]]:
        """For each sorted target time, ``(convert(frame), frame_time_s)`` of the nearest decodable frame."""
        out: list[tuple[np.ndarray, float]] = []
        last_frame = None
        missing: list[float] = []
        for t in targets_s:
            if self._should_seek(t):
                self._seek(t)
            chosen = self._advance_to(t)
            if chosen is None and not out:
                self._seek(0.0)  # a seek into damaged data: fall back to the last frame that decodes before t
                chosen = self._advance_to(t)
            if chosen is None and out:
                missing.append(t)
                out.append(out[-1])
                continue
            if chosen is None:
                raise DataError(
                    f"{self.path} is truncated or corrupt (no frame can be decoded); re-copy or re-encode it"
                )
            if self.exhausted and t - chosen[1] > 2.0 / self.meta.fps:
                missing.append(t)
            if chosen[0] is not last_frame:  # consecutive targets can share one decoded frame
                last_frame, array = chosen[0], convert(chosen[0])
            out.append((array, chosen[1]))
        notes = []
        if missing:
            notes.append(
                f"{len(missing)} frame(s) from {missing[0]:.2f} s on could not be decoded (truncated end?); "
                "the last decoded frame was repeated"
            )
        return out, notes

    # -- decisions
    def _position_s(self) -> float | None:
        if self._frames is None:
            return None
        if self.cur is not None:
            return self.cur[1]
        return self.prev[1] if self.prev is not None else 0.0

    def _should_seek(self, t: float) -> bool:
        pos = self._position_s()
        if self.exhausted:
            return False
        if pos is None:
            return self._keyframe_before(t) > 0.0 if self.index_usable else t > _DEFAULT_SEEK_GAP_S
        if pos >= t - self.half_frame_s:
            return False
        if self.index_usable:
            return self._keyframe_before(t) > pos + self.half_frame_s
        return t - pos > _DEFAULT_SEEK_GAP_S

    def _keyframe_before(self, t: float) -> float:
        i = bisect.bisect_right(self.keyframes_s, t + 1e-6)
        return self.keyframes_s[i - 1] if i else 0.0

    # -- decoding
    def _seek(self, t: float, back_s: float = 0.0) -> None:
        import av

        offset = self.meta.start_pts + int(max(0.0, t - back_s) / self.meta.time_base)
        try:
            self.container.seek(offset, stream=self.stream, backward=True)
        except av.error.FFmpegError:
            self.container.seek(0)  # unseekable stream: decode from the start
        self._frames = self._iter_frames()
        self.prev = self.cur = None
        self.exhausted = False

    def _iter_frames(self) -> Iterator[tuple[av.VideoFrame, float]]:
        import av

        start, tb = self.meta.start_pts, self.meta.time_base
        errors = 0
        try:
            for packet in self.container.demux(self.stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    errors += 1
                    if errors > 32:
                        return
                    continue
                for frame in frames:
                    pts = frame.pts if frame.pts is not None else frame.dts
                    if pts is None:
                        continue
                    yield frame, float((pts - start) * tb)
        except av.error.FFmpegError:
            return  # a read error past a truncated end: stop like an end of stream

    def _next(self) -> tuple[av.VideoFrame, float] | None:
        if self._frames is None:
            self._frames = self._iter_frames()
        try:
            return next(self._frames)
        except StopIteration:
            self.exhausted = True
            return None

    def _advance_to(self, t: float, retried: bool = False) -> tuple[av.VideoFrame, float] | None:
        """Return the decoded frame nearest to ``t`` (first at/after t - half a frame, or the one before)."""
        if self.cur is None and not self.exhausted:
            self.cur = self._next()
            if self.cur is not None and self.cur[1] > t + self.half_frame_s and not retried and t > 0:
                # Landed after the target (open GOP or a coarse index): seek further back once.
                self._seek(t, back_s=max(2.0, 2 * (self.cur[1] - t)))
                return self._advance_to(t, retried=True)
        while self.cur is not None and self.cur[1] < t - self.half_frame_s:
            self.prev, self.cur = self.cur, self._next()
        if self.cur is None:
            return self.prev
        if self.prev is not None and abs(self.prev[1] - t) < abs(self.cur[1] - t):
            return self.prev
        return self.cur

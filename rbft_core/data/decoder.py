"""Decoding the sampled frames of a video: the frames nearest to sorted target times, seeking (through the
container's keyframe index) only where a seek saves decoding."""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from rbft_core.errors import DataError

if TYPE_CHECKING:  # PyAV is imported where frames are decoded
    import av

__all__ = ["SeekingDecoder", "keyframe_pts", "DEFAULT_SEEK_GAP_S"]

DEFAULT_SEEK_GAP_S = 4.0  # used only when the container has no keyframe index


def keyframe_pts(stream) -> list[int]:
    import av  # PyAV (FFmpeg) loads only when a video is decoded

    try:
        return sorted(e.timestamp for e in stream.index_entries if e.is_keyframe)
    except (AttributeError, av.error.FFmpegError):
        return []


class SeekingDecoder:
    """Decode the frames nearest to sorted target times, seeking only when a seek saves decoding."""

    def __init__(self, path: Path, container, stream, meta):
        self.path, self.container, self.stream, self.meta = path, container, stream, meta
        stream.thread_type = "AUTO"
        self.keyframes_s = [float((p - meta.start_pts) * meta.time_base) for p in keyframe_pts(stream)]
        self.index_usable = len(self.keyframes_s) >= 2 or meta.duration_s <= DEFAULT_SEEK_GAP_S
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
            return self._keyframe_before(t) > 0.0 if self.index_usable else t > DEFAULT_SEEK_GAP_S
        if pos >= t - self.half_frame_s:
            return False
        if self.index_usable:
            return self._keyframe_before(t) > pos + self.half_frame_s
        return t - pos > DEFAULT_SEEK_GAP_S

    def _keyframe_before(self, t: float) -> float:
        i = bisect.bisect_right(self.keyframes_s, t + 1e-6)
        return self.keyframes_s[i - 1] if i else 0.0

    # -- decoding
    def _seek(self, t: float, back_s: float = 0.0) -> None:
        import av  # PyAV (FFmpeg) loads only when a video is decoded

        offset = self.meta.start_pts + int(max(0.0, t - back_s) / self.meta.time_base)
        try:
            self.container.seek(offset, stream=self.stream, backward=True)
        except av.error.FFmpegError:
            self.container.seek(0)  # unseekable stream: decode from the start
        self._frames = self._iter_frames()
        self.prev = self.cur = None
        self.exhausted = False

    def _iter_frames(self) -> Iterator[tuple[av.VideoFrame, float]]:
        import av  # PyAV (FFmpeg) loads only when a video is decoded

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

"""Sampled frames as data: how to sample (``SampleSpec``), the resize rule, and what sampling returns
(``SampledVideo``). No decoding here, so the frame cache and the decoder can both depend on it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rbft_core.errors import ConfigError, DataError

__all__ = ["SampleSpec", "SampledVideo", "smart_resize", "SAMPLER_VERSION"]

SAMPLER_VERSION = 1  # bump when the sampling rule changes so cached frames are not reused


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
            f"v{SAMPLER_VERSION}_{mode}_max{self.max_frames}_px{self.min_pixels}-{self.max_pixels}"
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

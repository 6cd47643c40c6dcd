"""How frames are sampled from a video: part of every run's spec, and the default of every later use of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from rbft_core.errors import ConfigError
from rbft_core.specs.base import Spec, setting

__all__ = ["Sampling", "SamplingOverride", "SAMPLING_FIELDS", "DEFAULT_MAX_PIXELS", "MAX_FRAMES_LIMIT",
           "MAX_PIXELS_LIMIT", "MAX_FPS", "MAX_BATCH_SIZE", "check_sampling", "check_batch_size"]

DEFAULT_MAX_PIXELS = 128 * 28 * 28
# Server-side upper bounds: a form or a spec file cannot ask one request for unbounded memory or time.
MAX_FRAMES_LIMIT = 256  # frames per video (num_frames, max_frames)
MAX_PIXELS_LIMIT = 16384 * 28 * 28  # per frame: Qwen2.5-VL's own image maximum (12,845,056 pixels)
MAX_FPS = 60.0
MAX_BATCH_SIZE = 64  # videos per step / generate call / scoring batch
SAMPLING_FIELDS = ("num_frames", "fps", "max_frames", "max_pixels")


@dataclass
class Sampling(Spec):
    """Frames per video: ``num_frames`` spread uniformly, or ``fps`` (> 0) capped at ``max_frames``."""

    task = "sampling"
    num_frames: int = setting(8, "frames sampled uniformly per video", label="frames", flag="frames")
    fps: float = setting(0.0, "frames per second instead of a fixed count (0: use frames)", unit="frames/s")
    max_frames: int = setting(32, "cap on the frame count when sampling by fps", label="max frames")
    max_pixels: int = setting(DEFAULT_MAX_PIXELS, "pixel budget per frame after resizing", label="max pixels",
                              unit="pixels")

    def validate(self) -> None:
        check_sampling(self.num_frames, self.fps, self.max_frames, self.max_pixels)

    @classmethod
    def of(cls, values: Any) -> "Sampling":
        """The sampling fields of a spec or a dict (a run's stored config)."""
        if isinstance(values, dict):
            return cls(**{k: values[k] for k in SAMPLING_FIELDS if values.get(k) is not None})
        return cls(**{k: getattr(values, k) for k in SAMPLING_FIELDS})

    def with_overrides(self, source: Any) -> tuple["Sampling", dict[str, Any]]:
        """This sampling with the non-None sampling fields of ``source`` applied; returns (sampling, what changed)."""
        changed = {}
        for name in SAMPLING_FIELDS:
            value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
            if value is not None and value != getattr(self, name):
                changed[name] = value
        return self.replace(**changed), changed

    def describe(self) -> str:
        frames = f"{self.fps:g} fps (max {self.max_frames})" if self.fps > 0 else f"{self.num_frames} frames"
        return f"{frames} at {self.max_pixels:,} px"


@dataclass
class SamplingOverride(Spec):
    """Sampling fields of a task that uses an existing run: empty means the run's own value; a value given
    overrides it and is reported next to the result."""

    num_frames: Optional[int] = setting(None, "frames per video (default: the run's own)", label="frames",
                                        flag="frames")
    fps: Optional[float] = setting(None, "frames per second (default: the run's own)", unit="frames/s")
    max_frames: Optional[int] = setting(None, "cap on frames with fps (default: the run's own)", label="max frames")
    max_pixels: Optional[int] = setting(None, "pixel budget per frame (default: the run's own)", label="max pixels",
                                        unit="pixels")

    def validate(self) -> None:
        check_sampling(self.num_frames, self.fps, self.max_frames, self.max_pixels)


def check_sampling(num_frames: Optional[int], fps: Optional[float], max_frames: Optional[int],
                   max_pixels: Optional[int]) -> None:
    """Each sampling value within its range; the message names the field and the bound."""
    if fps is not None and fps < 0:
        raise ConfigError(f"fps must be >= 0, got {fps}")
    if fps is not None and fps > MAX_FPS:
        raise ConfigError(f"fps must be <= {MAX_FPS:g}, got {fps}")
    if num_frames is not None and num_frames < 1 and not (fps and fps > 0):
        raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
    if num_frames is not None and num_frames > MAX_FRAMES_LIMIT:
        raise ConfigError(f"num_frames must be <= {MAX_FRAMES_LIMIT}, got {num_frames}")
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be >= 1, got {max_frames}")
    if max_frames is not None and max_frames > MAX_FRAMES_LIMIT:
        raise ConfigError(f"max_frames must be <= {MAX_FRAMES_LIMIT}, got {max_frames}")
    if max_pixels is not None and max_pixels < 28 * 28:
        raise ConfigError(f"max_pixels must be >= {28 * 28}, got {max_pixels}")
    if max_pixels is not None and max_pixels > MAX_PIXELS_LIMIT:
        raise ConfigError(f"max_pixels must be <= {MAX_PIXELS_LIMIT:,}, got {max_pixels:,}")


def check_batch_size(value: int, name: str = "batch_size") -> None:
    if value < 1:
        raise ConfigError(f"{name} must be >= 1, got {value}")
    if value > MAX_BATCH_SIZE:
        raise ConfigError(f"{name} must be <= {MAX_BATCH_SIZE}, got {value}")

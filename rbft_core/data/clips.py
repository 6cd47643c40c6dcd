"""Writing video: browser-playable H.264 clips from frames, and previews of files browsers cannot play.

moviepy 2 drives its bundled ffmpeg (imageio-ffmpeg), so no system ffmpeg is needed. Outputs are written to
a temporary file in the target folder and renamed into place, so a reader never sees half a clip.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from rbft_core.data.frame_cache import file_sha256
from rbft_core.data.video import probe_video
from rbft_core.errors import ConfigError, DataError

__all__ = ["write_clip", "make_preview", "browser_playable"]

_BROWSER_CODECS = {".mp4": {"h264"}, ".m4v": {"h264"}, ".webm": {"vp8", "vp9", "av1"}}
_BROWSER_PIX_FMTS = {"yuv420p", "yuvj420p"}



def write_clip(frames: np.ndarray, fps: float, out_path: str | os.PathLike) -> Path:
    """Write RGB frames [T, H, W, 3] as a browser-playable H.264 (yuv420p) mp4; odd sizes are padded to even."""
    from moviepy import (
        ImageSequenceClip,  # imported here: moviepy is slow to import and rarely needed
    )

    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    if frames.ndim != 4 or frames.shape[-1] not in (3, 4) or frames.shape[0] < 1:
        raise DataError(f"frames must be an array [T, H, W, 3] with T >= 1, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise DataError(
            f"frames must be uint8 (0-255), got {frames.dtype}; convert with np.clip(x, 0, 255).astype(np.uint8)"
        )
    if not (fps and fps > 0):
        raise ConfigError(f"fps must be > 0, got {fps}")
    out_path = Path(out_path)
    if out_path.suffix.lower() not in {".mp4", ".m4v", ".mov"}:
        raise ConfigError(f"out_path must end in .mp4 (H.264 in mp4 plays in browsers), got {out_path.name}")
    frames = frames[..., :3]
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.stem}.", suffix=out_path.suffix)
    os.close(fd)
    try:
        clip = ImageSequenceClip(list(frames), fps=fps)
        clip.write_videofile(tmp, fps=fps, codec="libx264", audio=False, preset="veryfast", logger=None,
                             ffmpeg_params=["-pix_fmt", "yuv420p", "-movflags", "+faststart"])
        clip.close()
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path


def browser_playable(path: str | os.PathLike) -> bool:
    """True when browsers play ``path`` as it is (``make_preview`` then returns it without a transcode)."""

    path = Path(path)
    info = probe_video(path)
    playable = info.codec in _BROWSER_CODECS.get(path.suffix.lower(), set())
    return playable and (info.pix_fmt in _BROWSER_PIX_FMTS or info.codec != "h264")


def make_preview(path: str | os.PathLike, out_dir: str | os.PathLike, *, sha256: str | None = None) -> Path:
    """A browser-playable version of ``path``: the file itself when it already plays, else an H.264 mp4.

    Transcodes are cached in ``out_dir`` by content hash, so a second call returns at once.
    """
    from moviepy import (
        VideoFileClip,  # moviepy (FFmpeg) loads only when a clip is written
    )


    path = Path(path)
    if browser_playable(path):
        return path
    info = probe_video(path)
    out_dir = Path(out_dir)
    out_path = out_dir / f"{sha256 or file_sha256(path)}.mp4"
    if out_path.exists():
        return out_path
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{out_path.stem}.", suffix=".mp4")
    os.close(fd)
    try:
        with warnings.catch_warnings(), VideoFileClip(str(path), audio=info.has_audio) as clip:
            # moviepy warns when a container's frame count overshoots by one; it reuses the last frame.
            warnings.simplefilter("ignore", UserWarning)
            if clip.w % 2 or clip.h % 2:
                clip = clip.cropped(x2=clip.w - clip.w % 2, y2=clip.h - clip.h % 2)
            clip.write_videofile(tmp, fps=info.fps, codec="libx264", audio=info.has_audio, audio_codec="aac",
                                 preset="veryfast", logger=None,
                                 ffmpeg_params=["-pix_fmt", "yuv420p", "-movflags", "+faststart"])
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path

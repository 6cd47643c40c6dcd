"""What the review page plays and shows: a browser-playable video and the frames the model saw.

The frame strip uses the suggestion's own sampling (``gen_params.sample_spec``, else its ``num_frames``
and ``max_pixels`` on Qwen's 28-pixel grid), read through the shared frame cache, so the reviewer sees
exactly the frames generation used, with their timestamps. Frames are written once as small JPEGs under
``cache/thumbs`` (the page loads them as files). A missing or broken video never blocks the review: the
page gets a notice instead, and cached frames when there are any.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from rbft_core.errors import ConfigError, DataError
from rbft_core.settings import cache_dir

__all__ = ["ItemMedia", "item_media", "sample_spec_of", "prefetch", "media_dirs"]

_HEX = re.compile(r"^[0-9a-fA-F]{16,128}$")
_prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rbft-prefetch")
_prefetch_lock = threading.Lock()
_busy: list[bool] = []


@dataclass
class ItemMedia:
    video: Optional[str] = None  # a browser-playable file, or None
    frames: list[tuple[str, str]] = field(default_factory=list)  # (jpeg path, "t=1.25 s")
    notice: str = ""


def media_dirs() -> list[Path]:
    """Folders the page loads media from (previews, thumbnails); the UI serves them."""
    dirs = [cache_dir() / "previews", cache_dir() / "thumbs"]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def sample_spec_of(gen_params: Optional[dict[str, Any]]):
    """The SampleSpec a suggestion was generated with (older rows: num_frames + max_pixels on a 28 px grid)."""
    from rbft_core.video import SampleSpec

    params = gen_params or {}
    recorded = params.get("sample_spec")
    if isinstance(recorded, dict):
        try:
            return SampleSpec(**recorded)
        except (TypeError, ConfigError):
            pass
    num_frames = int(params.get("num_frames") or 8)
    max_pixels = int(params.get("max_pixels") or 128 * 28 * 28)
    return SampleSpec(num_frames=num_frames, max_frames=max(32, num_frames), max_pixels=max_pixels,
                      min_pixels=min(max_pixels, 4 * 28 * 28), size_factor=28)


@functools.lru_cache(maxsize=512)
def _preview(path: str, mtime_ns: int, size: int, sha256: str) -> str:
    """make_preview, remembered per file version (it probes the file, which costs a few ms per call)."""
    from rbft_core.video import make_preview

    return str(make_preview(path, cache_dir() / "previews", sha256=sha256 if _HEX.match(sha256) else None))


def _thumb_paths(sha256: str, spec, count: int) -> list[Path]:
    folder = cache_dir() / "thumbs" / sha256[:2]
    return [folder / f"{sha256}_{spec.key()}_{i:02d}.jpg" for i in range(count)]


def _write_thumbs(sampled, paths: list[Path]) -> None:
    from PIL import Image

    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for frame, path in zip(sampled.frames, paths):
        if path.exists():
            continue
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".jpg")
        os.close(fd)
        try:
            Image.fromarray(frame).save(tmp, format="JPEG", quality=85)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _frames(path: Optional[Path], sha256: str, spec) -> list[tuple[str, str]]:
    """(jpeg, caption) per sampled frame; from the frame cache alone when ``path`` is None."""
    from rbft_core.video import default_frame_cache, sample_frames

    cache = default_frame_cache() if _HEX.match(sha256 or "") else None
    if path is None:
        sampled = cache.get(sha256, spec) if cache is not None else None
        if sampled is None:
            return []
    else:
        sampled = sample_frames(path, spec, sha256=sha256 if cache is not None else None, cache=cache)
    key = sha256 if cache is not None else f"nohash-{abs(hash(str(path))):x}"
    paths = _thumb_paths(key, spec, sampled.num_frames)
    if not all(p.exists() for p in paths):
        _write_thumbs(sampled, paths)
    return [(str(p), f"t={t:.2f} s") for p, t in zip(paths, sampled.timestamps_s)]


def item_media(video_path: str, sha256: str, gen_params: Optional[dict[str, Any]]) -> ItemMedia:
    """The player file, the frame strip and a notice for one video; never raises for a bad file."""
    spec = sample_spec_of(gen_params)
    path = Path(video_path)
    if not path.is_file():
        frames = _frames(None, sha256, spec)
        cached = " Frames below come from the cache." if frames else ""
        return ItemMedia(None, frames, f"The video file {path} is missing from disk (moved or deleted after "
                                       "import). Restore it at that path or re-import the dataset; the rationale "
                                       f"can still be reviewed.{cached}")
    media = ItemMedia()
    try:
        stat = path.stat()
        media.video = _preview(str(path), stat.st_mtime_ns, stat.st_size, sha256)
    except (DataError, OSError, RuntimeError, ValueError) as exc:
        media.notice = f"The video {path.name} cannot be played in the browser ({exc})."
    try:
        media.frames = _frames(path, sha256, spec)
    except (DataError, OSError, RuntimeError, ValueError) as exc:
        media.notice = (media.notice + " " if media.notice else "") + f"Its frames cannot be read ({exc})."
    return media


def prefetch(work: Callable[[], None]) -> bool:
    """Run ``work`` (warming the next item's media) in the background, one at a time; False when busy."""
    with _prefetch_lock:
        if _busy:
            return False
        _busy.append(True)

    def run() -> None:
        try:
            work()
        except Exception:  # noqa: BLE001 - a failed warm-up is redone for real when the item opens
            pass
        finally:
            with _prefetch_lock:
                _busy.clear()

    _prefetcher.submit(run)
    return True

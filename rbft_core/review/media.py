"""What the review page plays and shows: a browser-playable video and the frames the model saw.

The frame strip uses the suggestion's own sampling (``gen_params.sample_spec``, else its ``num_frames``
and ``max_pixels`` on Qwen's 28-pixel grid), read through the shared frame cache, so the reviewer sees
exactly the frames generation used, with their timestamps. Frames are written once as small JPEGs under
``cache/thumbs`` (the page loads them as files). A missing or broken video never blocks the review: the
page gets a notice instead, and cached frames when there are any.

The page never loads a file from an import folder: a video that plays as it is gets a content-addressed hard
link ``cache/media/<sha256[:2]>/<sha256>.mp4`` (a copy when the folder is on another file system), one that does
not gets an H.264 preview in ``cache/previews``. Only these app-made folders are served (``media_dirs``), and
every name in them ends in a video or image extension, so nothing next to an imported video (an ``.html``, a
key file) is ever reachable through the app.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from PIL import Image

from rbft_core.data.clips import browser_playable, make_preview
from rbft_core.data.video import SampleSpec, default_frame_cache, sample_frames
from rbft_core.errors import ConfigError, DataError
from rbft_core.settings import cache_dir

__all__ = ["ItemMedia", "item_media", "sample_spec_of", "prefetch", "media_dirs", "served_video", "SERVED_TYPES"]

_HEX = re.compile(r"^[0-9a-fA-F]{16,128}$")
PREVIEW_WAIT_S = 1.0  # how long opening an item waits for a transcode before showing a notice instead
_prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rbft-prefetch")
_transcoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rbft-preview")
_preview_lock = threading.Lock()
_transcodes: OrderedDict[tuple, Future] = OrderedDict()
_prefetch_lock = threading.Lock()
_busy: list[bool] = []
# The only file types the app serves from its media folders, with the content type they are served as.
SERVED_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".jpg": "image/jpeg", ".png": "image/png"}
_LINK_SUFFIX = {".mp4": ".mp4", ".m4v": ".mp4", ".webm": ".webm"}


@dataclass
class ItemMedia:
    video: Optional[str] = None  # a browser-playable file, or None
    frames: list[tuple[str, str]] = field(default_factory=list)  # (jpeg path, "t=1.25 s")
    notice: str = ""
    times_s: list[float] = field(default_factory=list)  # each frame's exact time, for the player's frame step


def media_dirs() -> list[Path]:
    """Folders the page loads media from (links to imported videos, previews, thumbnails); the UI serves them
    and nothing else of the data directory or of the import folders."""
    dirs = [cache_dir() / "media", cache_dir() / "previews", cache_dir() / "thumbs"]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def sample_spec_of(gen_params: Optional[dict[str, Any]]):
    """The SampleSpec a suggestion was generated with (older rows: num_frames + max_pixels on a 28 px grid)."""

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


@functools.lru_cache(maxsize=4096)
def _plays_as_is(path: str, mtime_ns: int, size: int) -> bool:
    """clips.browser_playable, remembered per file version (it probes the file: a few ms)."""

    return browser_playable(path)


def _link_path(path: Path, sha256: str) -> Path:
    key = sha256.lower() if _HEX.match(sha256 or "") else _path_key(path)
    return cache_dir() / "media" / key[:2] / f"{key}{_LINK_SUFFIX.get(path.suffix.lower(), '.mp4')}"


def _path_key(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()


def _current_link(path: Path, sha256: str) -> Optional[Path]:
    link = _link_path(path, sha256)
    try:
        if os.path.samefile(link, path) or link.stat().st_size == path.stat().st_size:
            return link
    except OSError:
        pass
    return None


def served_video(path: str | os.PathLike, sha256: str) -> Path:
    """A browser-playable imported video as the page may load it: a hard link named by its content hash under
    ``cache/media`` (a copy when a link is not possible: another file system, or a file the app does not own)."""

    path = Path(path)
    found = _current_link(path, sha256)
    if found is not None:
        return found
    link = _link_path(path, sha256)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.stem}.{os.getpid()}.{threading.get_ident()}{link.suffix}")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(path, tmp)
        except OSError:  # EXDEV, EPERM (protected hard links), a file system without links
            shutil.copyfile(path, tmp)
        os.replace(tmp, link)
    finally:
        tmp.unlink(missing_ok=True)
    return link


def _preview(path: Path, sha256: str) -> Optional[str]:
    """A served link to the file when browsers play it; else its H.264 preview; None while either is being made.

    Transcoding (or copying) a long video takes a while, so it runs in a background thread (never inside the
    page's event): the page waits ``PREVIEW_WAIT_S`` and otherwise shows a notice; the next open finds it ready.
    """

    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if _plays_as_is(*key):
        linked = _current_link(path, sha256)
        if linked is not None:
            return str(linked)
        work = functools.partial(served_video, path, sha256)
    else:
        work = functools.partial(make_preview, path, cache_dir() / "previews",
                                 sha256=sha256 if _HEX.match(sha256 or "") else None)
    with _preview_lock:
        future = _transcodes.get(key)
        if future is None:
            future = _transcoder.submit(work)
            _transcodes[key] = future
            while len(_transcodes) > 1024:
                _transcodes.popitem(last=False)
    try:
        made = Path(future.result(timeout=PREVIEW_WAIT_S))
    except FutureTimeout:
        return None
    except BaseException:
        with _preview_lock:  # a failure is tried again on the next open, not remembered
            _transcodes.pop(key, None)
        raise
    if not made.is_file():  # the cache was cleaned since: make it again
        with _preview_lock:
            _transcodes.pop(key, None)
        return _preview(path, sha256)
    return str(made)


def _thumb_paths(sha256: str, spec, count: int) -> list[Path]:
    folder = cache_dir() / "thumbs" / sha256[:2]
    return [folder / f"{sha256}_{spec.key()}_{i:02d}.jpg" for i in range(count)]


def _write_thumbs(sampled, paths: list[Path]) -> None:
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


def _frames(path: Optional[Path], sha256: str, spec) -> tuple[list[tuple[str, str]], list[float]]:
    """(jpeg, caption) per sampled frame and the frames' times; from the frame cache alone when ``path`` is None."""

    cache = default_frame_cache() if _HEX.match(sha256 or "") else None
    if path is None:
        sampled = cache.get(sha256, spec) if cache is not None else None
        if sampled is None:
            return [], []
    else:
        sampled = sample_frames(path, spec, sha256=sha256 if cache is not None else None, cache=cache)
    key = sha256 if cache is not None else f"nohash-{abs(hash(str(path))):x}"
    paths = _thumb_paths(key, spec, sampled.num_frames)
    if not all(p.exists() for p in paths):
        _write_thumbs(sampled, paths)
    times = [float(t) for t in sampled.timestamps_s]
    return [(str(p), f"t={t:.2f} s") for p, t in zip(paths, times)], times


def item_media(video_path: str, sha256: str, gen_params: Optional[dict[str, Any]]) -> ItemMedia:
    """The player file, the frame strip and a notice for one video; never raises for a bad file."""
    spec = sample_spec_of(gen_params)
    path = Path(video_path)
    if not path.is_file():
        frames, times = _frames(None, sha256, spec)
        cached = " Frames below come from the cache." if frames else ""
        notice = (f"The video file {path} is missing from disk (moved or deleted after import). Restore it at that "
                  f"path or re-import the dataset; the rationale can still be reviewed.{cached}")
        return ItemMedia(None, frames, notice, times)
    media = ItemMedia()
    try:
        media.video = _preview(path, sha256)
        if media.video is None:
            media.notice = (f"A browser-playable preview of {path.name} is being made (its codec does not play in "
                            "browsers); reopen the item in a moment (Alt+J). The frames below are what the model saw.")
    except (DataError, OSError, RuntimeError, ValueError) as exc:
        media.notice = f"The video {path.name} cannot be played in the browser ({exc})."
    try:
        media.frames, media.times_s = _frames(path, sha256, spec)
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

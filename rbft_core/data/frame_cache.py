"""The frame cache: sampled frames keyed by content sha256 + ``SampleSpec.key()``.

An in-process LRU over ``.npy`` files (plain ``np.save``: a 16-frame 420x224 entry loads in under a
millisecond) with a JSON sidecar. Writes are atomic (temporary file + ``os.replace``), so processes sharing
the folder never read half an entry. Callers normally go through ``rbft_core.data.video.sample_frames(...,
cache=...)``; this module holds no decoding.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rbft_core.data.frames import SampledVideo
from rbft_core.errors import ConfigError
from rbft_core.settings import cache_dir

if TYPE_CHECKING:
    from rbft_core.data.frames import SampleSpec

__all__ = ["FrameCache", "default_frame_cache", "file_sha256"]

_SHA_RE = re.compile(r"^[0-9a-fA-F]{16,128}$")


def file_sha256(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """The hex sha256 of a file's content (the frame cache's identity for a video)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


class FrameCache:
    """Sampled frames keyed by content sha256 + ``SampleSpec.key()``: an in-process LRU over ``.npy`` files.

    Each entry is ``<root>/<sha[:2]>/<sha>_<spec key>.npy`` (frames) plus a ``.json`` sidecar (timestamps,
    indices, fps). Both are written to a temporary file and renamed; the sidecar goes last and marks the
    entry complete, so concurrent processes never read half an entry.

    Every ``get`` hands out its own writable copy (about a millisecond for 16 frames), so code that paints
    into frames (masking) can never change what the next reader gets. The in-memory LRU is bounded by
    ``max_items_in_memory`` and ``max_bytes_in_memory``; 0 turns it off (every hit reads the ``.npy``).
    """

    def __init__(self, root: str | os.PathLike, max_items_in_memory: int = 64,
                 max_bytes_in_memory: int = 256 * 2**20):
        if max_items_in_memory < 0:
            raise ConfigError(f"max_items_in_memory must be >= 0, got {max_items_in_memory}")
        if max_bytes_in_memory < 0:
            raise ConfigError(f"max_bytes_in_memory must be >= 0, got {max_bytes_in_memory}")
        self.root = Path(root)
        self.max_items_in_memory = max_items_in_memory
        self.max_bytes_in_memory = max_bytes_in_memory
        self._memory: OrderedDict[str, SampledVideo] = OrderedDict()
        self._memory_bytes = 0
        self._lock = threading.Lock()

    def _paths(self, sha256: str, spec: SampleSpec) -> tuple[str, Path, Path]:
        if not isinstance(sha256, str) or not _SHA_RE.match(sha256):
            raise ConfigError(f"sha256 must be a hex digest, got {sha256!r}")
        key = f"{sha256.lower()}_{spec.key()}"
        folder = self.root / key[:2]
        return key, folder / f"{key}.npy", folder / f"{key}.json"

    def get(self, sha256: str, spec: SampleSpec) -> SampledVideo | None:
        """The cached frames (the caller's own copy), or None on a miss; a damaged entry is removed."""
        key, npy_path, json_path = self._paths(sha256, spec)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return _copy(self._memory[key])
        try:
            sidecar = json.loads(json_path.read_text())
            frames = np.load(npy_path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError):
            self._discard(npy_path, json_path)
            return None
        if list(frames.shape) != sidecar.get("shape"):
            self._discard(npy_path, json_path)
            return None

        video = SampledVideo(
            frames=frames,
            timestamps_s=sidecar["timestamps_s"],
            frame_indices=sidecar["frame_indices"],
            source_fps=sidecar["source_fps"],
            duration_s=sidecar["duration_s"],
            source_size=tuple(sidecar["source_size"]),
            total_num_frames=sidecar["total_num_frames"],
            notes=sidecar.get("notes", []),
        )
        return _copy(video) if self._remember(key, video) else video

    def contains(self, sha256: str, spec: SampleSpec) -> bool:
        """Whether an entry is stored (without reading it; ``get`` still checks that it is whole)."""
        key, npy_path, json_path = self._paths(sha256, spec)
        with self._lock:
            if key in self._memory:
                return True
        return json_path.is_file() and npy_path.is_file()

    def put(self, sha256: str, spec: SampleSpec, video: SampledVideo) -> None:
        """Store ``video`` (copied: the caller keeps ownership of its arrays)."""
        key, npy_path, json_path = self._paths(sha256, spec)
        npy_path.parent.mkdir(parents=True, exist_ok=True)
        sidecar = {
            "spec": spec.key(),
            "shape": list(video.frames.shape),
            "timestamps_s": video.timestamps_s,
            "frame_indices": video.frame_indices,
            "source_fps": video.source_fps,
            "duration_s": video.duration_s,
            "source_size": list(video.source_size),
            "total_num_frames": video.total_num_frames,
            "notes": video.notes,
        }
        _atomic_write(npy_path, lambda fh: np.save(fh, np.ascontiguousarray(video.frames), allow_pickle=False))
        _atomic_write(json_path, lambda fh: fh.write(json.dumps(sidecar).encode()))
        self._remember(key, _copy(video))

    def clear_memory(self) -> None:
        with self._lock:
            self._memory.clear()
            self._memory_bytes = 0

    def _remember(self, key: str, video: SampledVideo) -> bool:
        """Keep ``video`` (now owned by the cache, made read-only) in the LRU; False when it does not fit."""
        size = video.frames.nbytes
        if self.max_items_in_memory == 0 or size > self.max_bytes_in_memory:
            return False
        video.frames.flags.writeable = False
        with self._lock:
            if key in self._memory:
                self._memory_bytes -= self._memory.pop(key).frames.nbytes
            self._memory[key] = video
            self._memory_bytes += size
            while len(self._memory) > self.max_items_in_memory or self._memory_bytes > self.max_bytes_in_memory:
                self._memory_bytes -= self._memory.popitem(last=False)[1].frames.nbytes
        return True

    @staticmethod
    def _discard(*paths: Path) -> None:
        for p in paths:
            p.unlink(missing_ok=True)


def _copy(video: SampledVideo) -> SampledVideo:
    return replace(video, frames=video.frames.copy(), timestamps_s=list(video.timestamps_s),
                   frame_indices=list(video.frame_indices), notes=list(video.notes))


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=8)
def _cache_for(root: Path) -> FrameCache:
    return FrameCache(root)


def default_frame_cache() -> FrameCache:
    """The process-wide frame cache in ``settings.cache_dir()/frames`` (one LRU per folder)."""
    return _cache_for(cache_dir() / "frames")



"""The per-file work of an import, spread over a process pool: resolve + hash, probe; and the progress meter.

Hashing and probing are CPU work in C (hashlib, FFmpeg) done file by file, so they scale with processes, while
the database inserts stay in the importing process (``rbft_core.data.importer``). Small imports run inline
(starting a pool costs more than it saves). Results come back in input order.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Optional

from rbft_core.data.manifests import escape_message, inside
from rbft_core.data.video import probe_video
from rbft_core.errors import DataError

__all__ = ["hash_file", "probe_file", "pool_map", "Meter", "default_workers", "PROBE_FIELDS", "INLINE_BELOW"]

CHUNK_BYTES = 1 << 20
PROBE_FIELDS = ("duration_s", "fps", "width", "height", "num_frames", "codec")
INLINE_BELOW = 64  # fewer files than this are handled in this process


def default_workers() -> int:
    """One process per CPU core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def hash_file(task: tuple[str, str]) -> tuple[Optional[str], int, str, Optional[str]]:
    """``(ref, root)`` -> (real path, size, sha256, None), or (None, 0, "", why not) for a file that cannot be used."""
    ref, root_text = task
    root = Path(root_text)
    candidate = root / ref
    if not inside(candidate, root):
        return None, 0, "", escape_message(ref, candidate, root)
    if not candidate.is_file():
        return None, 0, "", f"video file {ref} not found under {root}"
    path = Path(os.path.realpath(candidate))
    try:
        return str(path), path.stat().st_size, sha256_of(path), None
    except OSError as e:
        return None, 0, "", f"cannot read {ref}: {e.strerror}; check its permissions"


def probe_file(path: str) -> tuple[dict[str, Any], Optional[str]]:
    """(probe fields + has_audio, None) of a readable video, or ({}, why it cannot be read)."""
    try:
        info = probe_video(path)
    except DataError as e:
        return {}, str(e)
    except Exception as e:  # noqa: BLE001 - one odd file must not stop a long import
        return {}, f"video {Path(path).name} could not be read ({type(e).__name__}: {e}); re-encode it or remove it"
    return {**{name: getattr(info, name) for name in PROBE_FIELDS}, "has_audio": bool(info.has_audio)}, None


def _context() -> Any:
    """fork when this process runs one thread (fast: nothing to re-import), else forkserver (safe with threads)."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _watch_parent() -> None:
    """In a pool worker: leave when the process that started it is gone (the import was killed with -9).

    With fork that is the importing process; with forkserver the server, which ends with the importer.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="rbft-parent-watch", daemon=True).start()


def pool_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int, chunksize: int = 32) -> Iterator[Any]:
    """``map(fn, items)`` over ``workers`` processes (inline for one worker or a few items), in input order."""
    if workers <= 1 or len(items) < INLINE_BELOW:
        yield from map(fn, items)
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_watch_parent)
    try:
        yield from pool.map(fn, items, chunksize=chunksize)
    finally:  # also when the consumer stops early (an error, a stop request): drop what is queued
        pool.shutdown(wait=True, cancel_futures=True)


class Meter:
    """Progress text with the rate of the current phase and the time left: "hashing 1,200/10,000 · 850 files/s · ETA 0:11"."""

    def __init__(self, progress: Optional[Callable[[int, int, str], None]], every_s: float = 0.5) -> None:
        self.progress, self.every_s = progress, every_s
        self.phase, self.phase_start, self.phase_done, self.last = "", time.monotonic(), 0, 0.0

    def start(self, phase: str) -> None:
        self.phase, self.phase_start, self.phase_done = phase, time.monotonic(), 0

    def rate(self) -> float:
        return self.phase_done / max(time.monotonic() - self.phase_start, 1e-6)

    def tick(self, done: int, total: int, phase_done: int, phase_total: int, note: str = "", force: bool = False) -> None:
        """Report ``done`` of ``total`` steps in all; the text tells this phase's count, rate and time left."""
        self.phase_done = phase_done
        now = time.monotonic()
        if self.progress is None or not (force or now - self.last >= self.every_s):
            return
        self.last = now
        rate = self.rate()
        left = (phase_total - phase_done) / rate if rate > 0 else 0.0
        eta = f"{int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}" if left >= 3600 else \
            f"{int(left // 60)}:{int(left % 60):02d}"
        text = f"{self.phase} {phase_done:,}/{phase_total:,} · {rate:,.0f} files/s · ETA {eta}"
        self.progress(done, total, f"{text} · {note}" if note else text)

"""How a long task reports progress and learns that it should stop, without knowing who runs it.

Library functions take ``progress(done, total, text)`` and ``should_stop()`` as arguments; the job runner and
the CLI adapt them (a DB row and a tqdm bar). Nothing in the library reads a global job state.
"""

from __future__ import annotations

from typing import Callable, Optional

__all__ = ["Progress", "StopCheck", "report", "stop_requested", "phased", "fanout"]

Progress = Callable[[float, float, str], None]
StopCheck = Callable[[], bool]


def report(progress: Optional[Progress], done: float, total: float, text: str = "") -> None:
    if progress is not None:
        progress(done, total, text)


def stop_requested(should_stop: Optional[StopCheck]) -> bool:
    return bool(should_stop and should_stop())


def phased(progress: Optional[Progress], index: int, count: int, name: str) -> Optional[Progress]:
    """Progress of phase ``index`` of ``count`` (``name``) mapped onto the whole task's progress."""
    if progress is None:
        return None

    def inner(done: float, total: float, text: str = "") -> None:
        fraction = float(done) / float(total or 1)
        label = f"{name} ({index + 1}/{count})" + (f": {text}" if text else "")
        progress(index + min(1.0, fraction), count, label)

    inner(0, 1, "")
    return inner


def fanout(*callbacks: Optional[Progress]) -> Optional[Progress]:
    """One progress callback feeding several (a job row and a terminal bar)."""
    live = [c for c in callbacks if c is not None]
    if not live:
        return None

    def inner(done: float, total: float, text: str = "") -> None:
        for callback in live:
            callback(done, total, text)

    return inner

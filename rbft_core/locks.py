"""File locks shared by the app, the CLI and jobs (``flock``: released by the kernel when a process dies).

- The app lock: a running web app holds a shared lock on ``<database file>.app-lock`` (for a server database:
  ``<data dir>/locks/app-<hash>.lock``); ``rbft restore`` takes it exclusively, so it refuses while any app
  uses the database and an app started during a restore waits for it.
- Device locks: one compute task per device at a time, for jobs and for the web app's own model use (the
  Inspect tab); ``device_lock(..., wait_s=...)`` gives up with a message instead of blocking a page.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from sqlalchemy.engine import make_url

from rbft_core.errors import JobError
from rbft_core.settings import data_dir, database_url

__all__ = ["app_lock_path", "hold_app_lock", "app_is_running", "exclusive_app_lock", "device_lock",
           "device_lock_path"]


def app_lock_path(db_url: Optional[str]) -> Path:
    url = make_url(database_url(db_url))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().resolve().with_name(Path(url.database).name + ".app-lock")
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return data_dir() / "locks" / f"app-{digest}.lock"


def _open(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a+")


@contextmanager
def hold_app_lock(db_url: Optional[str]) -> Iterator[None]:
    """Held by the web app for as long as it serves ``db_url`` (shared: several apps may run)."""
    with _open(app_lock_path(db_url)) as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def app_is_running(db_url: Optional[str]) -> bool:
    """True while some process holds the app lock of ``db_url``."""
    path = app_lock_path(db_url)
    if not path.exists():
        return False
    with _open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


@contextmanager
def exclusive_app_lock(db_url: Optional[str], action: str) -> Iterator[None]:
    """Held while ``action`` (a restore) replaces the database; refused while an app runs on it."""
    path = app_lock_path(db_url)
    with _open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobError(f"the web app is running on this database (it holds {path}); stop the app "
                           f"(Ctrl+C in its terminal, or stop its service), then {action}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def device_lock_path(device: str) -> Path:
    return data_dir() / "locks" / f"device-{device.replace(':', '')}.lock"


@contextmanager
def device_lock(device: Optional[str], *, wait_s: Optional[float] = None, what: str = "this task") -> Iterator[None]:
    """Exclusive use of ``device`` (None: no lock). ``wait_s`` None waits as long as it takes (a queued job);
    otherwise a ``JobError`` says the device is busy after ``wait_s`` seconds."""
    if not device:
        yield
        return
    with _open(device_lock_path(device)) as handle:
        if wait_s is None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise JobError(f"{device} is busy with another job (a training or evaluation); {what} needs "
                                       "it: wait for that job to end (Train tab) or stop it, then try again") from None
                    time.sleep(0.2)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

"""Serving media to the page without copying it, and only from folders the app itself writes.

Gradio copies (and hashes) every returned file into its cache unless the file lies in a static path; a
review page returns a video and eight frames per item, so copying would cost a full read of the video on
every "next". The static paths are the data directory's media folders alone (``media_dirs``: hard links to
imported videos named by their content hash, H.264 previews, frame thumbnails). An import folder is never a
static path: the page gets the link of a video recorded in the database (``review.media.served_video``), so
nothing else in that folder (an ``.html`` beside a video, a key file, ``/`` itself) is reachable.
``ui.guard.FileGuard`` enforces the same set on ``/gradio_api/file=`` and forces the content types.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Optional

import gradio as gr

from rbft_core.review.media import media_dirs

__all__ = ["serve", "serve_dirs", "served_roots"]

_lock = threading.Lock()
_served: list[str] = []


def served_roots() -> list[str]:
    """The folders whose files the page may load (for the launch's allowed paths and tests)."""
    with _lock:
        return list(_served)


def serve_dirs(*folders: os.PathLike | str) -> None:
    """Serve the files under these app-made media folders directly; any other folder is refused."""
    allowed = {str(Path(d).resolve()) for d in media_dirs()}
    with _lock:
        for folder in folders:
            resolved = str(Path(folder).resolve())
            if resolved not in allowed:
                raise ValueError(f"{resolved} is not one of the app's media folders; only those are served")
            if resolved not in _served:
                gr.set_static_paths([resolved])
                _served.append(resolved)


def serve(db_url: Optional[str], *paths: Optional[str]) -> None:
    """Make sure the media folders are served. Files elsewhere (an import folder) never become servable:
    ``review.media.item_media`` already returns links inside the media folders."""
    del db_url, paths  # kept for the callers' signature; what is served no longer depends on them
    serve_dirs(*media_dirs())

"""Serving media files to the page without copying them.

Gradio copies (and hashes) every returned file into its cache unless the file lies in a static path;
a review page returns a video and eight frames per item, so copying would cost a full read of the
video on every "next". Instead the folder of each file shown is registered once as a static path
(the cache folders for previews and frames at start-up, and each video's own folder when first shown).
Gradio checks every returned file against every static path, so the list is kept short: a file inside
an already served folder adds nothing.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Optional

import gradio as gr

__all__ = ["serve", "serve_dirs"]

_lock = threading.Lock()
_served: list[str] = []


def _covered(folder: str) -> bool:
    return any(folder == root or folder.startswith(root + os.sep) for root in _served)


def serve_dirs(*folders: os.PathLike | str) -> None:
    """Serve every file under these folders directly."""
    with _lock:
        for folder in folders:
            resolved = str(Path(folder).resolve())
            if not _covered(resolved):
                gr.set_static_paths([resolved])
                _served.append(resolved)


def serve(*paths: Optional[str]) -> None:
    """Let the page load these files directly (their folders become static paths unless already served)."""
    folders = {str(Path(p).resolve().parent) for p in paths if p}
    new = [f for f in folders if not _covered(f)]
    if new:
        serve_dirs(*new)

"""Serving media files to the page without copying them, and only from folders the app owns.

Gradio copies (and hashes) every returned file into its cache unless the file lies in a static path;
a review page returns a video and eight frames per item, so copying would cost a full read of the
video on every "next". Static paths are also what ``/gradio_api/file=`` serves, so they are kept to
the folders the app may show: the data directory's media caches and the source roots of imported
datasets (``db.queries.source_roots``). A file outside all of them is never made servable (Gradio then
refuses it). Gradio checks every returned file against every static path, so the list stays short:
one entry per source root, not per video folder.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Optional

import gradio as gr

from rbft_core.review.media import source_roots

__all__ = ["serve", "serve_dirs", "served_roots"]

_lock = threading.Lock()
_served: list[str] = []


def _covered(path: str) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in _served)


def served_roots() -> list[str]:
    """The folders whose files the page may load (for the launch's allowed paths and tests)."""
    with _lock:
        return list(_served)


def serve_dirs(*folders: os.PathLike | str) -> None:
    """Serve every file under these folders directly."""
    with _lock:
        for folder in folders:
            resolved = str(Path(folder).resolve())
            if not _covered(resolved):
                gr.set_static_paths([resolved])
                _served.append(resolved)


def serve(db_url: Optional[str], *paths: Optional[str]) -> None:
    """Let the page load these files directly when they lie under the data directory or a source root.

    A file under a dataset imported since start-up serves that dataset's source root; a file under no
    known root stays unserved.
    """
    pending = [str(Path(p).resolve()) for p in paths if p]
    pending = [p for p in pending if not _covered(p)]
    if not pending:
        return

    roots = [str(root) for root in source_roots(db_url)]
    serve_dirs(*[r for r in roots if any(p == r or p.startswith(r.rstrip(os.sep) + os.sep) for p in pending)])

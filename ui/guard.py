"""What leaves the server: which files ``/gradio_api/file=`` may send, which origins may call the API, and how
long uploads stay.

Two ASGI middlewares wrap Gradio's app (``launch(app_kwargs={"middleware": ...})``):

- ``FileGuard``: a file is sent only from the app's media folders (links to imported videos, previews,
  thumbnails; named by content hash, with a video or image extension) or from what Gradio itself made (its
  cache of returned files and its upload folder). Anything else is 403, whatever Gradio's allowed paths say:
  the data directory (database, backups, logs, job specs) and every import folder. Media go out with the
  content type of their extension and ``nosniff``; every file response carries a sandboxing CSP, so even a
  file that slipped through could not run script in the app's origin.
- ``OriginGuard``: a browser request whose ``Origin`` is neither the app's own origin nor an allowed one is
  refused (Gradio's CORS layer reflects any origin with credentials when the app is bound off loopback).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Optional
from urllib.parse import urlsplit

from rbft_core.review.media import SERVED_TYPES

__all__ = ["FileGuard", "OriginGuard", "normalise_origin", "clean_old_files", "FILE_ROUTES"]

FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/")
SANDBOX_CSP = "default-src 'none'; media-src 'self'; img-src 'self'; style-src 'unsafe-inline'; sandbox"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(str(path))))


def _inside(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body})


class FileGuard:
    """Refuse ``/gradio_api/file=`` for anything but the media folders and Gradio's own cache/upload folders."""

    def __init__(self, app: Callable, media_roots: Iterable[str | os.PathLike],
                 created_roots: Iterable[str | os.PathLike] = ()) -> None:
        self.app = app
        self.media_roots = [_real(r) for r in media_roots]
        self.created_roots = [_real(r) for r in created_roots]

    def decide(self, url_path: str) -> tuple[bool, Optional[str]]:
        """(allowed, forced content type or None) for the file a request path names."""
        for prefix in FILE_ROUTES:
            if url_path.startswith(prefix):
                target = url_path[len(prefix):]
                break
        else:
            return True, None
        if not target or "://" in target:
            return False, None
        real = _real(target)
        if _inside(real, self.media_roots):
            forced = SERVED_TYPES.get(real.suffix.lower())
            return (forced is not None and real.is_file()), forced
        if _inside(real, self.created_roots):
            return real.is_file(), None
        return False, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(FILE_ROUTES):
            await self.app(scope, receive, send)
            return
        allowed, forced = self.decide(scope["path"])
        if not allowed:
            await _plain(send, 403, "File not allowed: the app serves only its own media files.")
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"x-content-type-options", b"content-security-policy")
                           and not (forced and k.lower() in (b"content-type", b"content-disposition"))]
                headers += [(b"x-content-type-options", b"nosniff"), (b"content-security-policy", SANDBOX_CSP.encode())]
                if forced:
                    headers += [(b"content-type", forced.encode()), (b"content-disposition", b"inline")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def normalise_origin(origin: str) -> str:
    """``HTTPS://Example.org:443/`` -> ``https://example.org`` (scheme, host and a non-default port)."""
    parts = urlsplit(origin.strip())
    scheme, host = (parts.scheme or "").lower(), (parts.hostname or "").lower()
    if not scheme or not host:
        return origin.strip().lower()
    port = parts.port
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(scheme)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def _host_port(origin: str) -> str:
    """``scheme://host[:port]`` -> ``host[:port]`` with the web's default ports (80, 443) left out."""
    parts = urlsplit(origin)
    try:
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    return host + (f":{port}" if port and port not in (80, 443) else "") if host else ""


class OriginGuard:
    """Refuse browser requests from other origins: ``Origin`` must be the app's own (scheme + Host header) or
    one of ``allowed`` (``--allowed-origin``). Requests without ``Origin`` (curl, gradio_client) pass."""

    def __init__(self, app: Callable, allowed: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = {normalise_origin(o) for o in allowed if o.strip()}

    def origin_ok(self, scope: Scope) -> tuple[bool, str]:
        """(allowed, the Origin sent). The own origin is matched on host and port only: behind a TLS proxy or a
        share tunnel the browser says https while the app sees http."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if origin is None:
            return True, ""
        host = headers.get("host", "")
        given = normalise_origin(origin)
        same_site = bool(host) and _host_port(given) == _host_port(f"http://{host}")
        return (same_site or given in self.allowed), origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        ok, origin = self.origin_ok(scope)
        if ok:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await _plain(send, 403, f"cross-origin request from {origin[:200]} refused; start the app with "
                                "--allowed-origin ORIGIN to allow it")


def clean_old_files(folder: str | os.PathLike, max_age_s: float, now: Optional[float] = None) -> int:
    """Delete files older than ``max_age_s`` under ``folder`` (and the folders they leave empty); returns the count.

    Gradio keeps every upload (``/gradio_api/upload``) until the process ends; the app calls this at launch and
    then hourly, so a long-running app does not fill the disk with old uploads."""
    root = Path(folder)
    if not root.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - max_age_s
    removed = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = Path(dirpath) / name
            try:
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        if Path(dirpath) != root:
            try:
                os.rmdir(dirpath)  # only succeeds when empty
            except OSError:
                pass
    return removed

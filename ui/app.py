"""The Gradio Blocks app: one module per tab; this module only assembles them and launches."""

from __future__ import annotations

from typing import Callable, Optional

import gradio as gr
from sqlalchemy.engine import make_url

from db.engine import init_db
from rbft_core.errors import ConfigError
from rbft_core.jobs.runner import recover_jobs
from rbft_core.review.media import media_dirs, source_roots
from rbft_core.settings import data_dir, database_url
from ui import datasets_tab, export_tab, inspect_tab, review_tab, train_tab
from ui.common import Tab
from ui.keys import shortcut_js
from ui.media import serve_dirs
from ui.review_render import CSS

__all__ = ["TABS", "build_app", "build_tabs", "launch", "page_assets", "check_exposure", "parse_auth"]


def page_assets() -> dict:
    """The js and css ``launch()`` needs (Gradio 6 takes them there): keyboard shortcuts, review styles."""

    serve_dirs(*media_dirs())  # frame strips and previews load without a copy into Gradio's cache
    return {"js": shortcut_js(), "css": CSS}


# (title, builder) of every tab, in page order. A builder lays the tab out and returns its dataclass of
# components; ``attach`` wires the tab's events and its page-load hook (``ui.common.Tab``).
TABS: tuple[tuple[str, Callable[[], Tab]], ...] = (
    ("Datasets", datasets_tab.build_datasets_tab),
    ("Review", review_tab.build_review_tab),
    ("Train", train_tab.build_train_tab),
    ("Inspect", inspect_tab.build_inspect_tab),
    ("Export", export_tab.build_export_tab),
)


def build_app(db_url: Optional[str] = None) -> gr.Blocks:
    with gr.Blocks(title="RB-FT Studio") as demo:
        gr.Markdown("# RB-FT Studio\nRationale-Bootstrapped Fine-Tuning of video vision-language models")
        build_tabs(demo, db_url)
    return demo


def build_tabs(demo: gr.Blocks, db_url: Optional[str]) -> list[Tab]:
    """Every tab of ``TABS`` in its own ``gr.Tab``, wired the same way (inside ``demo``'s context)."""
    built = []
    for title, build in TABS:
        with gr.Tab(title):
            tab = build()
        tab.attach(demo, db_url)
        built.append(tab)
    return built


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_exposure(host: str, *, auth: Optional[str], share: bool, insecure: bool) -> None:
    """Refuse to serve reviewers' videos beyond this machine without a password, unless told explicitly."""

    if insecure or auth:
        return
    if share:
        raise ConfigError("--share publishes the app on a public gradio.live link; add --auth user:pass "
                          "(or pass --insecure to share it without a password)")
    if host not in LOCAL_HOSTS:
        raise ConfigError(f"--host {host} lets other machines reach the app; add --auth user:pass "
                          "(or pass --insecure to serve it without a password)")


def parse_auth(auth: Optional[str]) -> Optional[tuple[str, str]]:
    """``user:pass`` -> (user, pass). The message never repeats the value: it holds a password."""

    if not auth:
        return None
    user, _, password = auth.partition(":")
    if not user or not password:
        raise ConfigError("--auth (or RBFT_AUTH) must be user:pass with both parts non-empty")
    return user, password


def launch(*, host: str, port: int, db_url: Optional[str], share: bool, auth: Optional[str],
           insecure: bool = False, max_upload_mb: float = 500) -> int:

    check_exposure(host, auth=auth, share=share, insecure=insecure)
    credentials = parse_auth(auth)
    init_db(db_url)

    recover_jobs(db_url)  # jobs whose process died while the app was down; live ones are left running
    assets = page_assets()
    serve_dirs(*source_roots(db_url))  # datasets imported later are added when first shown (ui.media.serve)
    app = build_app(db_url)
    app.queue(default_concurrency_limit=8).launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=credentials,
        allowed_paths=[str(data_dir())],
        blocked_paths=_database_files(db_url),
        max_file_size=int(max_upload_mb * 1024 * 1024),
        show_error=True,
        **assets,
    )
    return 0


def _database_files(db_url: Optional[str]) -> list[str]:
    """A SQLite database inside the data folder must never be downloadable through /file=."""

    url = make_url(database_url(db_url))
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return []
    return [url.database + suffix for suffix in ("", "-wal", "-shm", ".init-lock")]

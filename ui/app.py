"""The Gradio Blocks app: one module per tab; this module only assembles them and launches."""

from __future__ import annotations

import os
import threading
from typing import Callable, Optional, Sequence

import gradio as gr
from gradio.utils import get_cache_folder, get_upload_folder
from sqlalchemy.engine import make_url
from starlette.middleware import Middleware

from db.engine import init_db
from rbft_core.auth import AUTH_FROM_DB, login_checker
from rbft_core.errors import ConfigError
from rbft_core.jobs.runner import recover_jobs
from rbft_core.locks import hold_app_lock
from rbft_core.review.media import media_dirs
from rbft_core.settings import IMPORT_ROOTS_ENV, data_dir, database_url, import_roots
from ui import adjudicate_tab, datasets_tab, export_tab, inspect_tab, quality_tab, review_tab, train_tab
from ui.adjudicate_render import CSS as ADJUDICATE_CSS
from ui.common import Tab
from ui.guard import FileGuard, OriginGuard, clean_old_files
from ui.guide import build_guide, tab_id
from ui.keys import KEYS_CSS, shortcut_js
from ui.media import serve_dirs
from ui.player import PLAYER_CSS, player_js
from ui.review_render import CSS
from ui.typing_keeper import KEPT_CSS, typing_keeper_js

__all__ = ["TABS", "build_app", "build_tabs", "launch", "page_assets", "check_exposure", "parse_auth",
           "guard_middleware", "UPLOAD_MAX_AGE_S"]

UPLOAD_MAX_AGE_S = 24 * 3600.0  # Gradio's upload folder keeps a file this long (a day), then it is deleted


def page_assets() -> dict:
    """The js and css ``launch()`` needs (Gradio 6 takes them there): keyboard shortcuts and their help overlay, the
    player's controls, the unsaved-typing keeper, review styles."""

    serve_dirs(*media_dirs())  # frame strips and previews load without a copy into Gradio's cache
    scripts = (shortcut_js(), player_js(), typing_keeper_js())
    js = "() => { " + " ".join(f"({script.strip()})();" for script in scripts) + " }"
    return {"js": js, "css": CSS + KEPT_CSS + KEYS_CSS + PLAYER_CSS + ADJUDICATE_CSS}


# (title, builder) of every tab, in page order. A builder lays the tab out and returns its dataclass of
# components; ``attach`` wires the tab's events and its page-load hook (``ui.common.Tab``).
TABS: tuple[tuple[str, Callable[[], Tab]], ...] = (
    ("Datasets", datasets_tab.build_datasets_tab),
    ("Review", review_tab.build_review_tab),
    ("Adjudicate", adjudicate_tab.build_adjudicate_tab),
    ("Quality", quality_tab.build_quality_tab),
    ("Train", train_tab.build_train_tab),
    ("Inspect", inspect_tab.build_inspect_tab),
    ("Export", export_tab.build_export_tab),
)


def build_app(db_url: Optional[str] = None) -> gr.Blocks:
    with gr.Blocks(title="RB-FT Studio") as demo:
        gr.Markdown("# RB-FT Studio\nRationale-Bootstrapped Fine-Tuning of video vision-language models")
        guide = build_guide()  # the five steps with their counts; folds away once a run exists
        with gr.Tabs() as tabs:
            build_tabs(demo, db_url)
        guide.attach(demo, db_url, tabs)
    return demo


def build_tabs(demo: gr.Blocks, db_url: Optional[str]) -> list[Tab]:
    """Every tab of ``TABS`` in its own ``gr.Tab`` (id ``tab_id(title)``), wired the same way (inside ``demo``'s
    context)."""
    built = []
    for title, build in TABS:
        with gr.Tab(title, id=tab_id(title)):
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


def parse_auth(auth: Optional[str], db_url: Optional[str] = None) -> Optional[tuple[str, str] | Callable]:
    """``user:pass`` -> (user, pass): one login, an admin. ``db`` -> a check against the users table (``rbft users
    add NAME --role ROLE``; reviewers, adjudicators, admins). The message never repeats the value: it holds a
    password."""

    if not auth:
        return None
    if auth == AUTH_FROM_DB:
        return login_checker(db_url)
    user, _, password = auth.partition(":")
    if not user or not password:
        raise ConfigError("--auth (or RBFT_AUTH) must be user:pass with both parts non-empty, or db (the logins "
                          "added with `rbft users add`)")
    return user, password


def guard_middleware(allowed_origins: Sequence[str] = ()) -> list[Middleware]:
    """The file and origin guards (``ui.guard``) for ``launch(app_kwargs={"middleware": ...})``."""
    created = [get_upload_folder(), str(get_cache_folder())]
    return [Middleware(OriginGuard, allowed=list(allowed_origins)),
            Middleware(FileGuard, media_roots=[str(d) for d in media_dirs()], created_roots=created)]


def _clean_uploads_forever(every_s: float = 3600.0) -> None:
    folders = [get_upload_folder(), str(data_dir() / "uploads")]
    while True:
        for folder in folders:
            clean_old_files(folder, UPLOAD_MAX_AGE_S)
        threading.Event().wait(every_s)


def launch(*, host: str, port: int, db_url: Optional[str], share: bool, auth: Optional[str],
           insecure: bool = False, max_upload_mb: float = 500, import_root: Sequence[str] = (),
           allowed_origins: Sequence[str] = ()) -> int:

    check_exposure(host, auth=auth, share=share, insecure=insecure)
    if import_root:  # the tabs and the jobs they start read it from the environment
        os.environ[IMPORT_ROOTS_ENV] = os.pathsep.join(str(p) for p in import_root)
    import_roots()  # resolves (and so checks) the setting before anything starts
    init_db(db_url)
    credentials = parse_auth(auth, db_url)  # after init_db: ``db`` reads the users table
    with hold_app_lock(db_url):  # `rbft restore` refuses while this is held
        recover_jobs(db_url)  # jobs whose process died while the app was down; live ones are left running
        assets = page_assets()
        threading.Thread(target=_clean_uploads_forever, name="rbft-clean-uploads", daemon=True).start()
        app = build_app(db_url)
        app.queue(default_concurrency_limit=8).launch(
            server_name=host,
            server_port=port,
            share=share,
            auth=credentials,
            allowed_paths=[str(data_dir())],  # what a handler may return; FileGuard decides what is served
            blocked_paths=_database_files(db_url),
            max_file_size=int(max_upload_mb * 1024 * 1024),
            show_error=True,
            app_kwargs={"middleware": guard_middleware(allowed_origins)},
            **assets,
        )
    return 0


def _database_files(db_url: Optional[str]) -> list[str]:
    """A SQLite database inside the data folder must never be downloadable through /file=."""

    url = make_url(database_url(db_url))
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return []
    return [url.database + suffix for suffix in ("", "-wal", "-shm", ".init-lock", ".app-lock", ".bak")]

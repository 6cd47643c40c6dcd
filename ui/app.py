"""The Gradio Blocks app: one module per tab; this module only assembles them and launches."""

from __future__ import annotations

from typing import Optional

import gradio as gr

from ui import datasets_tab, export_tab, inspect_tab, review_tab, train_tab

__all__ = ["build_app", "launch", "page_assets"]


def page_assets() -> dict:
    """The js and css ``launch()`` needs (Gradio 6 takes them there): keyboard shortcuts, review styles."""
    from rbft_core.review_media import media_dirs
    from ui.keys import shortcut_js
    from ui.media import serve_dirs
    from ui.review_render import CSS

    serve_dirs(*media_dirs())  # frame strips and previews load without a copy into Gradio's cache
    return {"js": shortcut_js(), "css": CSS}


def build_app(db_url: Optional[str] = None) -> gr.Blocks:
    with gr.Blocks(title="RB-FT Studio") as demo:
        gr.Markdown("# RB-FT Studio\nRationale-Bootstrapped Fine-Tuning of video vision-language models")
        with gr.Tab("Datasets"):
            tab = datasets_tab.build_datasets_tab(db_url)
        demo.load(tab.load_fn, inputs=None, outputs=tab.load_outputs, api_visibility="private")
        with gr.Tab("Review"):
            review = review_tab.build_review_tab(db_url)
        review.attach_page_load(demo)
        with gr.Tab("Train"):
            train = train_tab.build_train_tab(db_url)
        demo.load(train.load_fn, inputs=None, outputs=train.load_outputs, api_visibility="private")
        with gr.Tab("Inspect"):
            inspect = inspect_tab.build_inspect_tab(db_url)
        demo.load(inspect.load_fn, inputs=None, outputs=inspect.load_outputs, api_visibility="private")
        with gr.Tab("Export"):
            export = export_tab.build_export_tab(db_url)
        demo.load(export.load_fn, inputs=None, outputs=export.load_outputs)
    return demo


def launch(*, host: str, port: int, db_url: Optional[str], share: bool, auth: Optional[str]) -> int:
    from db.engine import init_db
    from rbft_core.settings import data_dir

    init_db(db_url)
    credentials = None
    if auth:
        user, _, password = auth.partition(":")
        if not user or not password:
            raise SystemExit("--auth must be user:pass")
        credentials = (user, password)
    app = build_app(db_url)
    app.queue(default_concurrency_limit=8).launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=credentials,
        allowed_paths=[str(data_dir())],
        blocked_paths=_database_files(db_url),
        show_error=True,
        **page_assets(),
    )
    return 0


def _database_files(db_url: Optional[str]) -> list[str]:
    """A SQLite database inside the data folder must never be downloadable through /file=."""
    from sqlalchemy.engine import make_url

    from rbft_core.settings import database_url

    url = make_url(database_url(db_url))
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return []
    return [url.database + suffix for suffix in ("", "-wal", "-shm", ".init-lock")]

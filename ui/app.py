"""The Gradio Blocks app: one module per tab; this module only assembles them and launches."""

from __future__ import annotations

from typing import Optional

import gradio as gr

from ui import datasets_tab

__all__ = ["build_app", "launch"]


def build_app(db_url: Optional[str] = None) -> gr.Blocks:
    with gr.Blocks(title="RB-FT Studio") as demo:
        gr.Markdown("# RB-FT Studio\nRationale-Bootstrapped Fine-Tuning of video vision-language models")
        with gr.Tab("Datasets"):
            tab = datasets_tab.build_datasets_tab(db_url)
        demo.load(tab.refresh_fn, inputs=None, outputs=tab.outputs)
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
        show_error=True,
    )
    return 0

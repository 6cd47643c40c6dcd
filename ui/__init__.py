"""Gradio tabs: one module per tab; calls rbft_core and db, holds no ML or SQL."""

"""RB-FT Studio core: all logic, never imports gradio."""

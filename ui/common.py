"""Small helpers every tab uses: binding fixed arguments to handlers, turning RbftError into gr.Error."""

from __future__ import annotations

import functools
import html
import inspect
import typing
from typing import Any, Callable

import gradio as gr

from rbft_core.errors import RbftError

__all__ = ["bind", "ui_errors"]


def ui_errors(fn: Callable) -> Callable:
    """RbftError -> ``gr.Error`` with the same message (it names the thing and the fix)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RbftError as exc:
            # The toast renders HTML: escape, since messages quote user text (a rationale, a path).
            raise gr.Error(html.escape(str(exc), quote=False), duration=None) from exc
    return wrapper


def bind(fn: Callable, *bound: Any) -> Callable:
    """``functools.partial`` that Gradio can still read: it finds ``gr.Request`` parameters by type hint,
    which a partial object hides."""
    signature = inspect.signature(fn)
    names = list(signature.parameters)[: len(bound)]
    hints = typing.get_type_hints(fn)

    def bound_fn(*args: Any, **kwargs: Any) -> Any:
        return fn(*bound, *args, **kwargs)

    bound_fn.__name__ = getattr(fn, "__name__", "handler")
    bound_fn.__doc__ = fn.__doc__
    bound_fn.__signature__ = signature.replace(parameters=list(signature.parameters.values())[len(bound):])
    bound_fn.__annotations__ = {k: v for k, v in hints.items() if k not in names}
    return bound_fn

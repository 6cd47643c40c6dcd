"""What every tab shares: the shape ``ui.app`` assembles tabs by, the event adapter, RbftError -> gr.Error.

A tab module has a dataclass of its components (nested form dataclasses allowed), ``build_<tab>_tab()`` that lays
them out and returns it, and the dataclass's ``attach(demo, db_url)`` that wires every event and the page-load
hook. Handlers never see or return positional values:

    def on_check(tab: TrainTab, db_url, values: Values) -> Updates:
        ready = readiness(db_url, values[tab.dataset], ...)
        return {tab.readiness: ready.to_markdown()}

An event still declares an ordered list of inputs and outputs, because gradio_client callers pass and receive
values in that order (the API's documented order; the API also names each parameter after its attribute,
``dataset``, ``stage1_lr``). ``Events.on`` puts one adapter between the two: it zips the ordered values into a dict
keyed by the input components, calls the handler under ``ui_errors``, and turns the returned dict back into the
declared order, with ``gr.skip()`` for every output the handler left out.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import inspect
import keyword
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

import gradio as gr

from rbft_core.errors import RbftError

__all__ = ["Tab", "Events", "Values", "Updates", "components", "attribute_names", "ui_errors"]

Values = Mapping[Any, Any]  # input component -> its value in this event
Updates = dict[Any, Any]  # output component -> its new value (or a gr.update / gr.skip())


class Tab(Protocol):
    """What ``ui.app`` needs of a built tab."""

    def attach(self, demo: gr.Blocks, db_url: Optional[str]) -> None:
        """Wire the tab's events, its page-load hook included."""


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


def components(form: Any) -> list:
    """A form dataclass's components in field order, nested forms flattened (an event's inputs in API order)."""
    out: list = []
    for field in dataclasses.fields(form):
        value = getattr(form, field.name)
        out.extend(components(value) if dataclasses.is_dataclass(value) else [value])
    return out


def attribute_names(form: Any, prefix: str = "") -> dict[int, str]:
    """id(component) -> its attribute path joined by '_' (``stage1_lr``): messages and the API's parameter names."""
    names: dict[int, str] = {}
    for field in dataclasses.fields(form):
        value = getattr(form, field.name)
        if dataclasses.is_dataclass(value):
            names.update(attribute_names(value, f"{prefix}{field.name}_"))
        else:
            names.setdefault(id(value), prefix + field.name)
    return names


class _Values(dict):
    """The inputs of one event; reading a component the event did not list names it."""

    def __init__(self, pairs: Any, event: str, names: dict[int, str]) -> None:
        super().__init__(pairs)
        self._event, self._names = event, names

    def __missing__(self, key: Any) -> Any:
        raise KeyError(f"{self._event}: tab.{self._names.get(id(key), key)} is not an input of this event; "
                       "add it to the event's inputs")


def _handler_name(handler: Callable) -> str:
    inner = handler.func if isinstance(handler, functools.partial) else handler
    return getattr(inner, "__name__", "handler")


class Events:
    """Wires one tab's events. Every handler is called as ``handler(tab, db_url, values, **bound)`` and returns
    ``Updates``; fixed arguments are bound with ``functools.partial`` (``partial(on_start, action="rbft")``), and a
    handler with a ``request`` (``gr.Request``) or ``evt`` (``gr.SelectData``) parameter receives it by keyword."""

    def __init__(self, tab: Any, db_url: Optional[str]) -> None:
        self.tab, self.db_url = tab, db_url
        self._names = attribute_names(tab)

    def on(self, trigger: Callable, handler: Callable, inputs: Sequence = (), outputs: Sequence = (),
           **event: Any) -> Any:
        """``trigger`` (e.g. ``tab.check.click``, ``demo.load``, ``dep.then``) runs ``handler``; ``inputs`` and
        ``outputs`` are the ordered lists the API exposes. Returns the dependency, for ``.then``."""
        inputs, outputs = list(inputs), list(outputs)
        return trigger(self.adapt(handler, inputs, outputs), inputs, outputs, **event)

    def adapt(self, handler: Callable, inputs: list, outputs: list) -> Callable:
        """The function Gradio calls: positional values in, positional values out (see the module docstring)."""
        name = _handler_name(handler)
        params = inspect.signature(handler).parameters
        wants_request, wants_evt = "request" in params, "evt" in params
        guarded = ui_errors(handler)

        def run(request: Optional[gr.Request], evt: Any, ordered: tuple) -> Any:
            if len(ordered) != len(inputs):
                raise TypeError(f"{name} got {len(ordered)} values for {len(inputs)} inputs")
            special = {**({"request": request} if wants_request else {}), **({"evt": evt} if wants_evt else {})}
            updates = guarded(self.tab, self.db_url, _Values(zip(inputs, ordered), name, self._names), **special)
            return self._ordered(name, updates, outputs)

        if wants_evt:
            def event(request: gr.Request, evt: gr.SelectData, *ordered: Any) -> Any:
                return run(request, evt, ordered)
        else:
            def event(request: gr.Request, *ordered: Any) -> Any:
                return run(request, None, ordered)
        event.__name__ = event.__qualname__ = name
        event.__doc__ = handler.__doc__
        self._name_parameters(event, inputs, special=["request", *(["evt"] if wants_evt else [])])
        return event

    def _name_parameters(self, event: Callable, inputs: list, special: list[str]) -> None:
        """Show the API's parameters by attribute name (Gradio reads them from the signature)."""
        names = [self._names.get(id(c)) for c in inputs]
        if any(n is None or not n.isidentifier() or keyword.iskeyword(n) or n in special for n in names) \
                or len(set(names)) != len(names):
            return  # a component outside the tab, or listed twice: Gradio numbers the parameters instead
        signature = inspect.signature(event)
        kept = [p for p in signature.parameters.values() if p.name in special]
        event.__signature__ = signature.replace(parameters=[  # type: ignore[attr-defined]
            *kept, *[inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]])

    def _ordered(self, name: str, updates: Any, outputs: list) -> Any:
        if not isinstance(updates, dict):
            raise TypeError(f"{name} returned {type(updates).__name__}; handlers return a dict keyed by output "
                            "components")
        declared = {id(c) for c in outputs}
        stray = [f"tab.{self._names.get(id(k), k)}" for k in updates if id(k) not in declared]
        if stray:
            raise TypeError(f"{name} returned {', '.join(stray)}, not among this event's outputs")
        ordered = [updates.get(c, gr.skip()) for c in outputs]
        if not outputs:
            return None
        return ordered[0] if len(outputs) == 1 else tuple(ordered)

"""Command-line flags derived from a spec's fields: name, type, choices, help, default and unit all come from
the dataclass, so the CLI cannot drift from the spec it builds."""

from __future__ import annotations

import argparse
import typing
from typing import Any, Literal, get_args, get_origin

from rbft_core.specs.base import Spec, optional_inner, spec_fields

__all__ = ["add_spec_flags", "spec_values", "flag_of"]


def flag_of(f, prefix: str = "") -> str:
    return f"--{prefix}{f.metadata.get('flag') or f.name.replace('_', '-')}"


def _dest(f, prefix: str) -> str:
    return f"{prefix.replace('-', '_')}{f.name}"


def _help(f, from_model: bool = False) -> str:
    meta = f.metadata
    text = meta.get("help") or f.name.replace("_", " ")
    default = f.default
    if default is None or default == () or default == "":
        shown = "none" if default is None else "empty"
    elif isinstance(default, bool):
        shown = "on" if default else "off"
    else:
        shown = str(default)
    unit = f" {meta['unit']}" if meta.get("unit") and shown not in ("none", "empty") else ""
    if from_model:  # rbft_core.models.model_sampling: the model folder's sampling, else the built-in value
        return f"{text} (default: from the model folder, else {shown}{unit})".replace("%", "%%")
    return f"{text} (default: {shown}{unit})".replace("%", "%%")


def add_spec_flags(parser: argparse.ArgumentParser, cls: type[Spec], *, prefix: str = "",
                   exclude: tuple[str, ...] = (), group_title: str = "", from_model: tuple[str, ...] = ()) -> None:
    """One flag per CLI field of ``cls``; every default is None, so ``spec_values`` sees only what was given.
    The fields named in ``from_model`` default to the model folder's value, and their help says so."""
    target = parser.add_argument_group(group_title) if group_title else parser
    hints = typing.get_type_hints(cls)
    for f in spec_fields(cls):
        if not f.metadata.get("cli", True) or f.name in exclude:
            continue
        _, tp = optional_inner(hints[f.name])
        flag, dest, help_text = flag_of(f, prefix), _dest(f, prefix), _help(f, f.name in from_model)
        if tp is bool:
            target.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif get_origin(tp) is tuple:
            item = get_args(tp)[0]
            target.add_argument(flag, dest=dest, action="append", default=None, type=item if item in (int, float) else str,
                                help=help_text + "; repeat for several")
        elif get_origin(tp) is Literal:
            choices = [str(c) for c in get_args(tp)]
            target.add_argument(flag, dest=dest, choices=choices, default=None, help=help_text)
        else:
            kind = tp if tp in (int, float) else str
            target.add_argument(flag, dest=dest, type=kind, default=None, help=help_text)


def spec_values(args: argparse.Namespace, cls: type[Spec], *, prefix: str = "") -> dict[str, Any]:
    """The fields of ``cls`` given on the command line (with ``prefix``), as a dict for ``cls.from_dict``."""
    out: dict[str, Any] = {}
    for f in spec_fields(cls):
        value = getattr(args, _dest(f, prefix), None)
        if value is not None:
            out[f.name] = value
    return out

"""The base of every task spec: typed dataclasses whose fields carry their own help, label and unit.

A spec is the one description of a long task. The CLI flags (``rbft_core.specs.flags``), the YAML file a job
runs (``Spec.to_yaml``) and the UI's field labels are all read from the dataclass fields, so no table of
settings is kept anywhere else. ``Spec.from_dict`` checks every value against its annotation and names the
field (with its path, e.g. ``stage2.lr``) in any refusal.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

import yaml

from rbft_core.errors import ConfigError

__all__ = ["Spec", "setting", "field_help", "field_label", "spec_fields", "type_of"]


def setting(default: Any = MISSING, help: str = "", *, label: str = "", unit: str = "", flag: str = "",
            default_factory: Any = MISSING, cli: bool = True) -> Any:
    """A spec field with its one-line help, the label a form shows, its unit and its CLI flag name.

    ``flag`` defaults to the field name with dashes (``max_pixels`` -> ``--max-pixels``); ``cli=False`` keeps
    a field out of the command line (it is still in the YAML).
    """
    meta = {"help": help, "label": label, "unit": unit, "flag": flag, "cli": cli}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def spec_fields(cls) -> list[dataclasses.Field]:
    """The fields of a spec, the class's own first (a task's identity reads before inherited sampling fields)."""
    by_name = {f.name: f for f in fields(cls) if f.init}
    order = [name for klass in cls.__mro__ for name in vars(klass).get("__annotations__", {}) if name in by_name]
    return [by_name[name] for name in dict.fromkeys(order)]


def field_help(cls, name: str) -> str:
    return next(f.metadata.get("help", "") for f in fields(cls) if f.name == name)


def field_label(cls, name: str) -> str:
    """What a form calls the field (its label, else the name in words)."""
    meta = next(f.metadata for f in fields(cls) if f.name == name)
    return meta.get("label") or name.replace("_", " ")


def type_of(cls, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def optional_inner(tp) -> tuple[bool, Any]:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """``value`` as ``tp`` (YAML and form values arrive loosely typed); a refusal names ``path``."""
    optional, inner = optional_inner(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"`{path}` must be given (it cannot be empty)")
    tp = inner
    origin = get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, Spec):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"`{path}` must be a mapping of {tp.__name__} settings, got {value!r}")
        return tp.from_dict(value, path=path)
    if origin is Literal:
        choices = get_args(tp)
        for choice in choices:
            if value == choice or str(value) == str(choice):
                return choice
        raise ConfigError(f"`{path}` must be one of {', '.join(map(str, choices))}, got {value!r}")
    if origin is tuple:
        item = get_args(tp)[0]
        if not isinstance(value, (list, tuple)):
            value = [value]
        # "a,b" (a form field or one CLI flag) and ["a", "b"] (YAML, a repeated flag) mean the same
        parts = [part for v in value for part in (v.split(",") if isinstance(v, str) else [v])]
        value = [part.strip() if isinstance(part, str) else part for part in parts
                 if not (isinstance(part, str) and not part.strip())]
        return tuple(_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "yes", "1", "false", "no", "0"}:
            return value.lower() in {"true", "yes", "1"}
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"`{path}` must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"`{path}` must be a whole number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"`{path}` must be a whole number, got {value!r}") from None
        if number != int(number):
            raise ConfigError(f"`{path}` must be a whole number, got {value!r}")
        return int(number)
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"`{path}` must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"`{path}` must be a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"`{path}` must be text, got {value!r}")
        return str(value)
    return value


@dataclass
class Spec:
    """Base of every task spec. ``task`` names the task in YAML (``task: train``) and in the jobs table."""

    task: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in spec_fields(type(self)):
            tp = typing.get_type_hints(type(self))[f.name]
            setattr(self, f.name, _coerce(getattr(self, f.name), tp, f.name))
        try:
            self.validate()
        except ConfigError as exc:
            raise ConfigError(_with_backticks(str(exc))) from None

    def validate(self) -> None:
        """Checks across fields; raise ``ConfigError`` starting with the field name."""

    # ------------------------------------------------------------------ dicts and YAML
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in spec_fields(type(self)):
            value = getattr(self, f.name)
            if isinstance(value, Spec):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, path: str = ""):
        if not isinstance(values, dict):
            raise ConfigError(f"`{path or cls.task}` must be a mapping, got {values!r}")
        values = {k: v for k, v in values.items() if k != "task"}
        known = {f.name for f in spec_fields(cls)}
        unknown = sorted(set(values) - known)
        prefix = f"{path}." if path else ""
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(prefix + u for u in unknown)} for a {cls.task or cls.__name__} "
                              f"spec; known: {', '.join(sorted(known))}")
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(_prefixed(str(exc), prefix)) from None

    def to_yaml(self) -> str:
        """The spec file: ``task:`` first, then every field (defaults included), in declaration order. No trailing
        newline, so the text a page shows (which drops it) is byte for byte the file that runs."""
        return yaml.safe_dump({"task": self.task, **self.to_dict()}, sort_keys=False, allow_unicode=True).rstrip("\n")

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_yaml())
        tmp.replace(path)
        return path

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def _with_backticks(message: str) -> str:
    """``lr must be > 0`` -> ```lr` must be > 0`` (messages from ``validate`` start with the field name)."""
    if message.startswith("`"):
        return message
    head, sep, rest = message.partition(" ")
    if head.replace("_", "").isalnum() and head.islower():
        return f"`{head}`{sep}{rest}"
    return message


def _prefixed(message: str, prefix: str) -> str:
    if prefix and message.startswith("`"):
        return f"`{prefix}{message[1:]}"
    return message


def require(spec: Spec, *names: str) -> None:
    """Refuse a spec that leaves an identity field (dataset, model, run) empty."""
    for name in names:
        if not getattr(spec, name):
            raise ConfigError(f"`{name}` must be given for a {spec.task} task ({field_help(type(spec), name)})")

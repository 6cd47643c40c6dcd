"""Parse model output into a dataset's rationale dimensions; render the Stage-I target text.

Parsing is forgiving (models write JSON, fenced JSON, ``Subjects: ...`` lines or stop half-way) and never loses
the raw text. The keys are the dataset's dimension names (``models.prompts.Dimension``; the paper's four by
default) plus ``conclusion``. A missing required dimension makes the parse partial, a missing optional one does
not; nothing found at all is a failed parse. Rendering is strict: the Stage-I target is one line of JSON with the
dataset's dimensions in their order (UTF-8, no ASCII escaping), e.g.::

    {"subjects": "a bear", "attributes": "large, dark brown", "actions": "climbs the porch steps", "scenes": "front porch at night"}

``parse_rationale(render_target(r, dims), dims).rationale == r`` for every rationale ``r`` over ``dims``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Optional, Sequence

from rbft_core.models.prompts import Dimension

__all__ = ["Rationale", "ParsedRationale", "ParseStatus", "parse_rationale", "render_target", "contradicts_label",
           "named_labels"]

ParseStatus = Literal["ok", "partial", "failed"]

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.S)


@dataclass(frozen=True)
class Rationale:
    """The text of each dimension (in the dataset's order), plus the model's one-sentence conclusion (not part of
    the Stage-I target)."""

    texts: dict[str, str] = field(default_factory=dict)
    conclusion: str = ""

    def __getitem__(self, name: str) -> str:
        return self.texts.get(name, "")

    def dimensions(self) -> dict[str, str]:
        return dict(self.texts)

    def filled(self) -> int:
        return sum(bool(text.strip()) for text in self.texts.values())


@dataclass(frozen=True)
class ParsedRationale:
    rationale: Rationale
    status: ParseStatus
    raw_text: str
    missing: tuple[str, ...] = field(default_factory=tuple)  # every dimension without text, optional ones too

    def to_fields(self) -> dict[str, Any]:
        """Fields of a suggestion row: one per dimension, the conclusion, the raw text and the parse status."""
        return {**self.rationale.texts, "conclusion": self.rationale.conclusion, "raw_text": self.raw_text,
                "parse_status": self.status}


@dataclass(frozen=True)
class _Keys:
    names: tuple[str, ...]  # the dimensions, then "conclusion"
    line: re.Pattern  # "Subjects: ...", "**Subjects**: ...", "- subjects - ..." up to the next key line
    partial: re.Pattern  # '"subjects": "...' in JSON cut short


def _key_pattern(name: str) -> str:
    """A name as a model may write it: ``on_screen_text`` also as "on screen text" or "on-screen text"."""
    return r"[_\s\-]".join(re.escape(part) for part in name.split("_"))


@lru_cache(maxsize=64)
def _keys(names: tuple[str, ...]) -> _Keys:
    keys = (*names, "conclusion")
    alternatives = "|".join(_key_pattern(k) for k in sorted(keys, key=len, reverse=True))
    line = re.compile(rf"^[\s\-*#>]*\**\s*({alternatives})\s*\**\s*[:\-–]\s*\**\s*(.*)$", re.I)
    partial = re.compile(rf'"({alternatives})"\s*:\s*"((?:[^"\\]|\\.)*)("?)', re.I)
    return _Keys(keys, line, partial)


def _canonical(key: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(key).strip().lower())


def _flatten(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (list, tuple)):
        return "; ".join(s for s in (_flatten(v) for v in value) if s)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in value.items() if _flatten(v))
    return str(value).strip()


def _from_mapping(obj: dict, keys: _Keys) -> dict[str, str]:
    lowered = {_canonical(k): v for k, v in obj.items()}
    return {key: _flatten(lowered.get(key)) for key in keys.names if key in lowered}


def _first_json_object(text: str) -> Optional[dict]:
    """The first balanced ``{...}`` that decodes as a JSON object."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text[match.start() :])
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _from_lines(text: str, keys: _Keys) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    current: Optional[str] = None
    for line in text.splitlines():
        match = keys.line.match(line)
        if match:
            current = _canonical(match.group(1))
            found[current] = [match.group(2).strip().strip("*").strip()]
        elif current and line.strip():
            found[current].append(line.strip())
    return {k: " ".join(v).strip() for k, v in found.items()}


def _from_partial_json(text: str, keys: _Keys) -> dict[str, str]:
    out = {}
    for key, value, _closed in keys.partial.findall(text):
        try:
            out[_canonical(key)] = json.loads(f'"{value}"').strip()
        except json.JSONDecodeError:
            out[_canonical(key)] = value.strip()
    return out


def parse_rationale(text: str, dimensions: Sequence[Dimension]) -> ParsedRationale:
    """Parse strict JSON, fenced JSON, key lines or truncated JSON into ``dimensions``; the status says how
    complete it is: ok (every required dimension has text), partial (some), failed (no dimension has text)."""
    raw = text or ""
    names = tuple(d.name for d in dimensions)
    keys = _keys(names)
    fields: dict[str, str] = {}
    candidates = [raw.strip()] + [m.group(1).strip() for m in _FENCE.finditer(raw)]
    for candidate in candidates:
        try:
            obj = json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            obj = _first_json_object(candidate)
        if isinstance(obj, dict):
            fields = _from_mapping(obj, keys)
            if fields:
                break
    if sum(bool(fields.get(n)) for n in names) < len(names):
        for fallback in (_from_lines(raw, keys), _from_partial_json(raw, keys)):
            for key, value in fallback.items():
                if value and not fields.get(key):
                    fields[key] = value
    rationale = Rationale({n: fields.get(n, "") for n in names}, fields.get("conclusion", ""))
    missing = tuple(n for n in names if not rationale[n])
    required_missing = [d.name for d in dimensions if d.required and not rationale[d.name]]
    status: ParseStatus = ("failed" if len(missing) == len(names) else "partial" if required_missing else "ok")
    return ParsedRationale(rationale=rationale, status=status, raw_text=raw, missing=missing)


def render_target(rationale: Rationale | dict[str, Optional[str]], names: Sequence[str]) -> str:
    """The Stage-I target text: one line of JSON with the dimensions ``names`` in their order."""
    values = rationale.dimensions() if isinstance(rationale, Rationale) else rationale
    return json.dumps({name: (values.get(name) or "").strip() for name in names}, ensure_ascii=False)


def named_labels(conclusion: str, labels: tuple[str, ...] | list[str]) -> list[str]:
    """The labels a conclusion names (whole words, lower case, in the order of ``labels``).

    "abnormal" contains "normal", so longer labels are matched first and removed before shorter ones.
    """
    text = (conclusion or "").lower()
    named = set()
    for candidate in sorted(labels, key=len, reverse=True):
        pattern = re.compile(rf"\b{re.escape(candidate.lower())}\b")
        if pattern.search(text):
            named.add(candidate.lower())
            text = pattern.sub(" ", text)
    return [label.lower() for label in labels if label.lower() in named]


def contradicts_label(conclusion: str, label: str, labels: tuple[str, ...] | list[str]) -> bool:
    """True when the conclusion names another label and not the given one (whole words only)."""
    named = named_labels(conclusion, labels)
    return bool(named) and label.lower() not in named

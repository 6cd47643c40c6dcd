"""Parse model output into the four rationale dimensions; render the Stage-I target text.

Parsing is forgiving (models write JSON, fenced JSON, ``Subjects: ...`` lines or stop half-way) and
never loses the raw text. Rendering is strict: the Stage-I target is one line of JSON with the four
keys in the fixed order ``subjects, attributes, actions, scenes`` (UTF-8, no ASCII escaping), e.g.::

    {"subjects": "a bear", "attributes": "large, dark brown", "actions": "climbs the porch steps", "scenes": "front porch at night"}

``parse_rationale(render_target(r)).rationale == r`` for every rationale ``r``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Optional

from rbft_core.models.prompts import DIMENSIONS

__all__ = ["Rationale", "ParsedRationale", "ParseStatus", "parse_rationale", "render_target", "contradicts_label", "named_labels"]

ParseStatus = Literal["ok", "partial", "failed"]

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.S)
_KEYS = DIMENSIONS + ("conclusion",)
# "Subjects: ...", "**Subjects**: ...", "- subjects - ..." up to the next key line.
_LINE = re.compile(
    r"^[\s\-*#>]*\**\s*(subjects|attributes|actions|scenes|conclusion)\s*\**\s*[:\-–]\s*\**\s*(.*)$",
    re.I,
)
_PARTIAL_KV = re.compile(r'"(subjects|attributes|actions|scenes|conclusion)"\s*:\s*"((?:[^"\\]|\\.)*)("?)', re.I)


@dataclass(frozen=True)
class Rationale:
    """The four dimensions, plus the model's one-sentence conclusion (not part of the Stage-I target)."""

    subjects: str = ""
    attributes: str = ""
    actions: str = ""
    scenes: str = ""
    conclusion: str = ""

    def dimensions(self) -> dict[str, str]:
        return {dim: getattr(self, dim) for dim in DIMENSIONS}

    def filled(self) -> int:
        return sum(bool(getattr(self, dim).strip()) for dim in DIMENSIONS)


@dataclass(frozen=True)
class ParsedRationale:
    rationale: Rationale
    status: ParseStatus
    raw_text: str
    missing: tuple[str, ...] = field(default_factory=tuple)

    def to_fields(self) -> dict[str, Any]:
        """Columns for a suggestion row."""
        return {**asdict(self.rationale), "raw_text": self.raw_text, "parse_status": self.status}


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


def _from_mapping(obj: dict) -> dict[str, str]:
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    return {key: _flatten(lowered.get(key)) for key in _KEYS if key in lowered}


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


def _from_lines(text: str) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    current: Optional[str] = None
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            current = match.group(1).lower()
            found[current] = [match.group(2).strip().strip("*").strip()]
        elif current and line.strip():
            found[current].append(line.strip())
    return {k: " ".join(v).strip() for k, v in found.items()}


def _from_partial_json(text: str) -> dict[str, str]:
    out = {}
    for key, value, _closed in _PARTIAL_KV.findall(text):
        try:
            out[key.lower()] = json.loads(f'"{value}"').strip()
        except json.JSONDecodeError:
            out[key.lower()] = value.strip()
    return out


def parse_rationale(text: str) -> ParsedRationale:
    """Parse strict JSON, fenced JSON, key lines or truncated JSON; status says how complete it is."""
    raw = text or ""
    fields: dict[str, str] = {}
    candidates = [raw.strip()] + [m.group(1).strip() for m in _FENCE.finditer(raw)]
    for candidate in candidates:
        try:
            obj = json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            obj = _first_json_object(candidate)
        if isinstance(obj, dict):
            fields = _from_mapping(obj)
            if fields:
                break
    if sum(bool(fields.get(d)) for d in DIMENSIONS) < len(DIMENSIONS):
        for fallback in (_from_lines(raw), _from_partial_json(raw)):
            for key, value in fallback.items():
                if value and not fields.get(key):
                    fields[key] = value
    rationale = Rationale(**{key: fields.get(key, "") for key in _KEYS})
    missing = tuple(d for d in DIMENSIONS if not getattr(rationale, d))
    status: ParseStatus = "ok" if not missing else ("failed" if len(missing) == len(DIMENSIONS) else "partial")
    return ParsedRationale(rationale=rationale, status=status, raw_text=raw, missing=missing)


def render_target(rationale: Rationale | dict[str, str]) -> str:
    """The Stage-I target text: one line of JSON with the four dimensions in fixed order."""
    values = rationale.dimensions() if isinstance(rationale, Rationale) else rationale
    return json.dumps({dim: (values.get(dim) or "").strip() for dim in DIMENSIONS}, ensure_ascii=False)


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

"""Automatic checks on a suggestion before review: each finding is a flag (a code and the reason a reviewer reads).

Computed once, when a suggestion is stored (``db.writes.add_suggestions``), from its text, the video's label and
the dataset's labels and prompt; the doubt score (``review.doubt``) puts flagged suggestions first and the
review queue filters by flag through an integer of bits (``flag_bits``) kept on the review.

| code | fires when |
|---|---|
| ``contradiction`` | the conclusion names another label and not the video's (whole words; "not abnormal" names no label, and with two labels it means the other one) |
| ``orphan_subject`` | an attribute or action belongs to a subject the subjects dimension does not name (``subject_check``) |
| ``uncertain_subject`` | the model gave a token of its subjects less than even odds (``models.confidence``, stored at generation); the reason gives the whole subject's probability too, which the doubt scores |
| ``degenerate`` | a loop, a dimension repeated, text copied from the prompt, another language or script (``text_checks``) |
| ``empty_dimension`` | a required dimension is empty or a placeholder ("n/a", "none", "-"); an optional one may be empty |
| ``label_leak`` | a dimension names a label word or a synonym of one (``LABEL_SYNONYMS``): the label hint leaking into what should be visual evidence |

Label words match as whole words only: "abnormal" never counts as "normal", "normally" only where listed.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Iterable, Mapping, Optional, Sequence

from rbft_core.errors import ConfigError
from rbft_core.models.prompts import DEFAULT_DIMENSIONS, Dimension, preset_from_record, rationale_prompt
from rbft_core.review.subject_check import orphan_reasons
from rbft_core.review.text_checks import degenerate_reasons, words

__all__ = ["Flag", "FLAG_CODES", "FLAG_NAMES", "FLAG_BITS", "ALL_FLAG_BITS", "LABEL_SYNONYMS", "check_suggestion",
           "flag_bits", "masks_with", "conclusion_labels", "label_mentions", "expected_prompt", "UNSURE_LOGPROB"]


@dataclass(frozen=True)
class Flag:
    code: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


# Most doubtful first: the order reasons are shown in, and the bit order of ``flag_bits``.
FLAG_CODES: tuple[str, ...] = ("contradiction", "orphan_subject", "uncertain_subject", "degenerate", "empty_dimension",
                                "label_leak")
FLAG_NAMES = {
    "contradiction": "conclusion contradicts the label",
    "orphan_subject": "attribute or action of an unnamed subject",
    "uncertain_subject": "model unsure of the subject",
    "degenerate": "degenerate text",
    "empty_dimension": "empty dimension",
    "label_leak": "names the label",
}
FLAG_BITS = {code: 1 << i for i, code in enumerate(FLAG_CODES)}
ALL_FLAG_BITS = (1 << len(FLAG_CODES)) - 1

# Words that say a label instead of showing evidence for it, per label word (any dataset whose labels use the
# word gets them). Add a row for a new label set; the label word itself always counts.
LABEL_SYNONYMS: dict[str, tuple[str, ...]] = {
    "normal": ("normally", "normality", "normalcy", "nothing unusual", "nothing suspicious", "unremarkable",
               "benign", "harmless"),
    "abnormal": ("abnormally", "abnormality", "abnormalities", "anomaly", "anomalies", "anomalous", "suspicious",
                 "suspiciously", "unusual", "irregular"),
    "hateful": ("hate", "hatred", "hatefully", "hate speech"),
    "offensive": ("offensively", "offence", "offense", "insulting"),
}
# An unsure subject: the model put less than half of its probability on a token it wrote in the subjects.
UNSURE_LOGPROB = math.log(0.5)
_PLACEHOLDERS = {"n/a", "na", "none", "null", "nil", "unknown", "tbd"}
_NEGATION = re.compile(r"(?:\bnot|\bno|\bnothing|\bnever|\bnor|n't|\bnon)[\s-]+(?:(?:a|an|at all|really|quite|an?y)\s+)?$", re.I)


@lru_cache(maxsize=256)
def _phrase(text: str) -> re.Pattern:
    """A word or phrase as whole words: letters or digits on neither side; spaces, hyphens between words vary."""
    parts = [re.escape(p) for p in re.split(r"[\s\-]+", text.strip().lower()) if p]
    return re.compile(r"(?<![^\W_])" + r"[\s\-]+".join(parts) + r"(?![^\W_])", re.I)


@lru_cache(maxsize=64)
def _label_phrases(labels: tuple[str, ...]) -> tuple[list[tuple[tuple[str, ...], str, str]], frozenset[str]]:
    """Each label word or synonym as its words, longest first, with the label it stands for; and every first word
    (a text without one of them names no label: one set test in the common case)."""
    phrases = sorted(((tuple(words(w)), w.lower(), label.lower()) for label in labels
                      for w in (label, *LABEL_SYNONYMS.get(label.lower(), ()))), key=lambda c: len(c[1]), reverse=True)
    phrases = [p for p in phrases if p[0]]
    return phrases, frozenset(p[0][0] for p in phrases)


def label_mentions(text: str, labels: Sequence[str]) -> list[tuple[str, str]]:
    """(label, word used) for every label word or synonym ``text`` names as whole words (hyphens and spaces
    between the words of a phrase alike), longest first: "abnormal" is never read as "normal", and "nothing
    unusual" (normal) is not also "unusual" (abnormal)."""
    tokens = words(text)
    phrases, firsts = _label_phrases(tuple(labels))
    if not firsts.intersection(tokens):
        return []
    used = [False] * len(tokens)
    found: list[tuple[str, str]] = []
    for phrase, word, label in phrases:
        n = len(phrase)
        for i in range(len(tokens) - n + 1):
            if tuple(tokens[i:i + n]) == phrase and not any(used[i:i + n]):
                used[i:i + n] = [True] * n
                if (label, word) not in found:
                    found.append((label, word))
    return found


def conclusion_labels(conclusion: str, labels: Sequence[str]) -> list[str]:
    """The labels a conclusion affirms (label words only, whole words, longest first; a negated mention such as
    "not abnormal" affirms nothing, except that with exactly two labels it affirms the other one)."""
    text = (conclusion or "").lower()
    affirmed, negated = [], []
    for label in sorted((lab.lower() for lab in labels), key=len, reverse=True):
        pattern = _phrase(label)
        for match in pattern.finditer(text):
            (negated if _NEGATION.search(text[:match.start()]) else affirmed).append(label)
        text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    if not affirmed and len(set(negated)) == 1 and len(labels) == 2:
        affirmed = [lab.lower() for lab in labels if lab.lower() != negated[0]]
    return [lab.lower() for lab in labels if lab.lower() in affirmed]


def _contradiction(conclusion: str, label: str, labels: Sequence[str]) -> Optional[str]:
    named = conclusion_labels(conclusion, labels)
    if named and label.lower() not in named:
        return f"conclusion says {' / '.join(named)} but label is {label}"
    return None


def _is_empty(text: Optional[str]) -> bool:
    value = (text or "").strip().lower().strip(".")
    return not any(ch.isalnum() for ch in value) or value in _PLACEHOLDERS


_COUNT = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")


def _empty(fields: Mapping[str, Optional[str]], dimensions: Sequence[Dimension]) -> Optional[str]:
    """The required dimensions that are empty ("all four dimensions are empty" when every dimension is)."""
    empty = [d.name for d in dimensions if d.required and _is_empty(fields.get(d.name))]
    if not empty:
        return None
    if all(_is_empty(fields.get(d.name)) for d in dimensions):
        n = len(dimensions)
        return f"all {_COUNT[n] if n < len(_COUNT) else n} dimensions are empty" if n > 1 else f"{empty[0]} is empty"
    return f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty"


def _leak(fields: Mapping[str, Optional[str]], labels: Sequence[str]) -> Optional[str]:
    for dim in fields:
        for label, word in label_mentions(fields.get(dim) or "", labels):
            said = f'the label "{label}"' if word == label else f'"{word}" (label {label})'
            return f"{dim} names {said}"
    return None


def _unsure(confidence: Optional[Mapping[str, Mapping]], subjects_text: str) -> Optional[str]:
    subjects = (confidence or {}).get("subjects") or {}
    low = subjects.get("min_logprob")
    if low is None or low >= UNSURE_LOGPROB:
        return None
    token = f'"{subjects.get("token", "")}" at p = {math.exp(low):.2f}'
    whole = subjects.get("logprob")
    if whole is None:  # stored before the whole subject's log-probability was kept
        return f"the model was unsure of the subject ({token})"
    text = subjects_text.strip()
    text = text if len(text) <= 40 else text[:39] + "…"
    return f'the model was unsure of the subject ("{text}" at p = {math.exp(min(whole, 0.0)):.2f}; {token})'


def check_suggestion(*, fields: Mapping[str, Optional[str]], conclusion: str, label: str, labels: Sequence[str],
                     parse_status: str = "ok", prompt: str = "", raw_text: str = "",
                     confidence: Optional[Mapping[str, Mapping]] = None,
                     dimensions: Sequence[Dimension] = DEFAULT_DIMENSIONS) -> list[Flag]:
    """Every flag of one suggestion of a video labelled ``label``, most doubtful first.

    ``fields``: the text of each of the dataset's ``dimensions`` (the paper's four by default); the subject checks
    read the dimensions named subjects, attributes and actions where the dataset has them; ``labels``: the
    dataset's label words; ``prompt``: the prompt the model was
    given (for the copied-prompt check; "" skips it); ``raw_text``: the model's answer (a loop in it is degenerate);
    ``confidence``: the suggestion's ``dimension_logprobs``
    (None or {} skips the unsure-subject check). A failed parse gets only ``empty_dimension``: there is no text
    to judge.
    """
    texts = {d.name: (fields.get(d.name) or "") for d in dimensions}
    found: dict[str, Optional[str]] = {"empty_dimension": _empty(texts, dimensions)}
    if parse_status != "failed":
        found["contradiction"] = _contradiction(conclusion, label, labels) if labels else None
        orphans = orphan_reasons(texts)
        found["orphan_subject"] = "; ".join(orphans) or None
        found["uncertain_subject"] = _unsure(confidence, texts["subjects"])
        found["degenerate"] = "; ".join(degenerate_reasons(texts, prompt, raw_text, conclusion)) or None
        found["label_leak"] = _leak(texts, labels) if labels else None
    return [Flag(code, found[code]) for code in FLAG_CODES if found.get(code)]


def flag_bits(flags: Iterable[Flag | Mapping[str, str]]) -> int:
    """The flags as an integer (``FLAG_BITS``): what the review queue filters on."""
    bits = 0
    for flag in flags or ():
        code = flag.code if isinstance(flag, Flag) else flag.get("code")
        bits |= FLAG_BITS.get(code or "", 0)
    return bits


def masks_with(wanted: int) -> list[int]:
    """Every value of ``flag_bits`` the filter ``wanted`` takes: 0 -> [0] (no flag), else those sharing a bit."""
    if wanted == 0:
        return [0]
    return [mask for mask in range(1, ALL_FLAG_BITS + 1) if mask & wanted]


@lru_cache(maxsize=256)
def expected_prompt(preset: str, role: str, task: str, labels: tuple[str, ...], criteria: str,
                    label: Optional[str], dimensions: tuple[Dimension, ...] = DEFAULT_DIMENSIONS) -> str:
    """The rationale prompt a dataset's model was given for a video (``label``: the hint, None without), for the
    copied-prompt check; "" when the dataset's preset cannot be built (the check is then skipped)."""
    try:
        record = preset_from_record(preset, role=role, task=task, labels=list(labels), criteria=criteria,
                                    dimensions=dimensions)
    except ConfigError:
        return ""
    return rationale_prompt(record, label)

"""Degenerate rationale text: repetition, text copied from the prompt, another language or script.

Pure functions over the four dimensions, no model and no new dependency: word n-grams, ``unicodedata`` script
names and small function-word lists. Each returns the reason a reviewer reads, or "" when the text looks fine.
Thresholds are chosen to stay quiet on ordinary rationales ("a man in a red jacket", "walking by"): a loop needs
three runs in a row, a prompt copy six words in a row, another language three of its function words and more of
them than English ones.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Mapping

__all__ = ["words", "repetition", "answer_loop", "copied_prompt", "other_language", "symbols", "degenerate_reasons"]

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_LOOP_RUNS = 3  # the same n-gram this many times in a row is a generation loop
_MIN_WORDS_FOR_RATIO = 12  # the distinct-word ratio means something only for longer texts
_MIN_DISTINCT_RATIO = 0.35
_PROMPT_SPAN = 6  # words in a row shared with the prompt
_MIN_LETTERS = 8  # script and language are judged on at least this many letters / words
_FOREIGN_SCRIPT_SHARE = 0.3

# Function words: frequent, short, and (mostly) not English words. English is the prompt's language.
_FUNCTION_WORDS = {
    "English": "the a an and of in on with is are at by to his her its their from near this that".split(),
    "Spanish": "el la los las y del con una unos por para está están sobre es que se".split(),
    "French": "le les et des du une avec est sont dans sur au aux qui ce cette".split(),
    "German": "der die das und ein eine mit ist sind auf dem den im vor neben".split(),
    "Italian": "il lo gli e della delle con una sono nel sul che si".split(),
    "Portuguese": "o os e do da das uma com está são no na em sobre".split(),
    "Dutch": "de het een en met is zijn op van naar bij".split(),
}
_ENGLISH = set(_FUNCTION_WORDS["English"])
# A word that is also English ("a", "in", "die", "is", "on") never counts for another language.
_FOREIGN = {lang: set(ws) - _ENGLISH - {"die", "o", "e"} for lang, ws in _FUNCTION_WORDS.items() if lang != "English"}


@lru_cache(maxsize=4096)
def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower()))


def words(text: str) -> list[str]:
    """Lower-case words (letters and digits of any script; an apostrophe inside a word stays)."""
    return list(_words(text or ""))


def _loop(tokens: list[str], longest: int = 4) -> str:
    """The shortest n-gram (n <= ``longest``) repeated ``_LOOP_RUNS`` times in a row, or ""."""
    for n in range(1, longest + 1):
        for start in range(0, len(tokens) - n * _LOOP_RUNS + 1):
            if tokens[start] != tokens[start + n]:  # cheap first test: most positions fail here
                continue
            gram = tokens[start:start + n]
            if all(tokens[start + k * n:start + (k + 1) * n] == gram for k in range(1, _LOOP_RUNS)):
                return " ".join(gram)
    return ""


def repetition(fields: Mapping[str, str]) -> str:
    """A loop inside a dimension, a long dimension of few distinct words, or two dimensions with the same text."""
    for dim, text in fields.items():
        tokens = words(text)
        gram = _loop(tokens)
        if gram:
            return f'{dim} repeats "{gram}"'
        if len(tokens) >= _MIN_WORDS_FOR_RATIO and len(set(tokens)) / len(tokens) < _MIN_DISTINCT_RATIO:
            return f"{dim} repeats itself ({len(set(tokens))} distinct of {len(tokens)} words)"
    seen: dict[tuple[str, ...], str] = {}
    for dim, text in fields.items():
        key = tuple(words(text))
        if not key:
            continue
        if key in seen:
            return f"{seen[key]} and {dim} hold the same text"
        seen[key] = dim
    return ""


@lru_cache(maxsize=256)
def _prompt_spans(prompt: str) -> frozenset[tuple[str, ...]]:
    tokens = words(prompt)
    return frozenset(tuple(tokens[i:i + _PROMPT_SPAN]) for i in range(0, len(tokens) - _PROMPT_SPAN + 1))


def copied_prompt(fields: Mapping[str, str], prompt: str) -> str:
    """A dimension that repeats ``_PROMPT_SPAN`` words in a row of the prompt, or the answer template's "..."."""
    spans = _prompt_spans(prompt)
    for dim, text in fields.items():
        if (text or "").strip() in ("...", "…"):
            return f'{dim} is the answer template ("...")'
        own = words(text)
        for start in range(0, len(own) - _PROMPT_SPAN + 1):
            if tuple(own[start:start + _PROMPT_SPAN]) in spans:
                return f'{dim} copies the prompt ("{" ".join(own[start:start + _PROMPT_SPAN])} ...")'
    return ""


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    first = name.split(" ", 1)[0] if name else ""
    return {"CJK": "Chinese/Japanese", "HIRAGANA": "Japanese", "KATAKANA": "Japanese", "HANGUL": "Korean"}.get(
        first, first.capitalize())


def other_language(text: str) -> str:
    """Mostly letters of a non-Latin script, or mostly another language's function words (Latin script)."""
    letters = [ch for ch in text or "" if ch.isalpha()]
    if len(letters) >= _MIN_LETTERS and not (text or "").isascii():  # ASCII letters are Latin
        scripts = Counter("Latin" if ch.isascii() else _script(ch) for ch in letters)
        foreign = {s: n for s, n in scripts.items() if s != "Latin"}
        if sum(foreign.values()) / len(letters) > _FOREIGN_SCRIPT_SHARE:
            top = max(foreign, key=foreign.get)
            return f"written in {top} script, not in English (the prompt's language)"
    tokens = words(text)
    english = sum(t in _ENGLISH for t in tokens)
    hits = {lang: sum(t in vocab for t in tokens) for lang, vocab in _FOREIGN.items()}
    lang = max(hits, key=hits.get)
    if hits[lang] >= 3 and hits[lang] > 2 * english:
        return f"looks like {lang} ({hits[lang]} {lang} function words), not English (the prompt's language)"
    return ""


def symbols(fields: Mapping[str, str]) -> str:
    """A dimension of at least ``_MIN_LETTERS`` characters that is mostly punctuation or symbols."""
    for dim, text in fields.items():
        chars = [ch for ch in text or "" if not ch.isspace()]
        if len(chars) >= _MIN_LETTERS and sum(ch.isalnum() for ch in chars) / len(chars) < 0.5:
            return f"{dim} is mostly symbols, not words"
    return ""


def answer_loop(raw_text: str) -> str:
    """The model's whole answer caught in a loop (a key and its value written again and again, which the parser
    reads once): an n-gram of up to 8 words three times in a row."""
    gram = _loop(words(raw_text), 8)
    return f'the answer repeats "{gram}"' if gram else ""


def degenerate_reasons(fields: Mapping[str, str], prompt: str = "", raw_text: str = "") -> list[str]:
    """Every degenerate-text finding for the four dimensions (empty ones are left to the empty-dimension check)
    and the raw answer they were parsed from."""
    filled = {dim: text for dim, text in fields.items() if (text or "").strip()}
    joined = " ".join(filled.values())
    loop = repetition(filled)
    found = [loop or answer_loop(raw_text), copied_prompt(filled, prompt) if prompt else "", other_language(joined),
             symbols(filled)]
    return [reason for reason in found if reason]

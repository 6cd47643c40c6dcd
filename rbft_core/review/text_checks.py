"""Degenerate rationale text: repetition, text copied from the prompt, another language or script.

Pure functions over a rationale's dimensions, no model and no new dependency: word n-grams, ``unicodedata`` script
names and small function-word lists. Each returns the reason a reviewer reads, or "" when the text looks fine.
Thresholds are chosen to stay quiet on ordinary rationales ("a man in a red jacket", "walking by"): a loop needs
three runs in a row, a prompt copy six words in a row, another language three of its function words and more of
them than English ones.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Mapping, Sequence

__all__ = ["words", "repetition", "answer_loop", "copied_prompt", "other_language", "symbols", "degenerate_reasons"]

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_LOOP_RUNS = 3  # the same n-gram this many times in a row is a generation loop
_MIN_WORDS_FOR_RATIO = 12  # the distinct-word ratio means something only for longer texts
_MIN_DISTINCT_RATIO = 0.35
_PROMPT_SPAN = 6  # words in a row shared with the prompt
_MIN_LETTERS = 8  # script and language are judged on at least this many letters / words
_JSON_SLACK_RATIO, _JSON_SLACK_CHARS = 1.2, 120  # keys, quotes and commas around the parsed values of an answer
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
_LANGUAGE_OF: dict[str, list[str]] = {}  # word -> the languages it counts for (one pass over a text's words)
for _lang, _vocab in (("English", _ENGLISH), *_FOREIGN.items()):
    for _word in _vocab:
        _LANGUAGE_OF.setdefault(_word, []).append(_lang)


@lru_cache(maxsize=4096)
def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower()))


def words(text: str) -> list[str]:
    """Lower-case words (letters and digits of any script; an apostrophe inside a word stays)."""
    return list(_words(text or ""))


def _loop(tokens: Sequence[str], longest: int = 4) -> str:
    """The shortest n-gram (n <= ``longest``) repeated ``_LOOP_RUNS`` times in a row, or "".

    Three runs of an n-gram at i are 2n tokens in a row each equal to the token n later: a run of 2n ones in the
    mask ``tokens[j] == tokens[j + n]``, found by a bytes search (no Python loop per position).
    """
    for n in range(1, longest + 1):
        mask = bytes(map(operator.eq, tokens, tokens[n:]))
        at = mask.find(b"\x01" * (n * (_LOOP_RUNS - 1)))
        if at >= 0:
            return " ".join(tokens[at:at + n])
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
def _prompt_spans(prompt: str) -> tuple[frozenset[str], frozenset[tuple[str, ...]]]:
    tokens = words(prompt)
    return frozenset(tokens), frozenset(tuple(tokens[i:i + _PROMPT_SPAN]) for i in range(len(tokens) - _PROMPT_SPAN + 1))


def copied_prompt(fields: Mapping[str, str], prompt: str) -> str:
    """A dimension that repeats ``_PROMPT_SPAN`` words in a row of the prompt, or the answer template's "..."."""
    vocabulary, spans = _prompt_spans(prompt)
    run = b"\x01" * _PROMPT_SPAN
    for dim, text in fields.items():
        if (text or "").strip() in ("...", "…"):
            return f'{dim} is the answer template ("...")'
        own = words(text)
        mask = bytes(map(vocabulary.__contains__, own))  # only a run of prompt words can be a copied span
        at = mask.find(run)
        while at >= 0:
            if tuple(own[at:at + _PROMPT_SPAN]) in spans:
                return f'{dim} copies the prompt ("{" ".join(own[at:at + _PROMPT_SPAN])} ...")'
            at = mask.find(run, at + 1)
    return ""


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    first = name.split(" ", 1)[0] if name else ""
    return {"CJK": "Chinese/Japanese", "HIRAGANA": "Japanese", "KATAKANA": "Japanese", "HANGUL": "Korean"}.get(
        first, first.capitalize())


def _foreign_script(text: str) -> str:
    if text.isascii():  # ASCII letters are Latin: the common case costs one call
        return ""
    letters = [ch for ch in text if ch.isalpha()]
    if len(letters) < _MIN_LETTERS:
        return ""
    foreign = Counter(_script(ch) for ch in letters if not ch.isascii())
    foreign.pop("Latin", None)
    if sum(foreign.values()) / len(letters) <= _FOREIGN_SCRIPT_SHARE:
        return ""
    return f"written in {max(foreign, key=foreign.get)} script, not in English (the prompt's language)"


def other_language(text: str) -> str:
    """Mostly letters of a non-Latin script, or mostly another language's function words (Latin script)."""
    script = _foreign_script(text or "")
    if script:
        return script
    hits: Counter = Counter()
    for token in words(text):
        for lang in _LANGUAGE_OF.get(token, ()):
            hits[lang] += 1
    english = hits.pop("English", 0)
    if not hits:
        return ""
    lang, n = max(hits.items(), key=lambda kv: kv[1])
    if n >= 3 and n > 2 * english:
        return f"looks like {lang} ({n} {lang} function words), not English (the prompt's language)"
    return ""


def symbols(fields: Mapping[str, str]) -> str:
    """A dimension of at least ``_MIN_LETTERS`` characters that is mostly punctuation or symbols."""
    for dim, text in fields.items():
        chars = "".join((text or "").split())
        if len(chars) >= _MIN_LETTERS and sum(map(str.isalnum, chars)) / len(chars) < 0.5:
            return f"{dim} is mostly symbols, not words"
    return ""


def answer_loop(raw_text: str, parsed_chars: int = 0) -> str:
    """The model's whole answer caught in a loop (a key and its value written again and again, which the parser
    reads once): an n-gram of up to 8 words three times in a row. Only an answer longer than what was parsed from
    it (``parsed_chars``) by more than the JSON around it can loop outside the parsed values (those are checked by
    ``repetition``), so the common answer costs no tokenisation here."""
    if len(raw_text or "") <= _JSON_SLACK_RATIO * parsed_chars + _JSON_SLACK_CHARS:
        return ""
    gram = _loop(words(raw_text), 8)
    return f'the answer repeats "{gram}"' if gram else ""


def degenerate_reasons(fields: Mapping[str, str], prompt: str = "", raw_text: str = "",
                       conclusion: str = "") -> list[str]:
    """Every degenerate-text finding for the dimensions in ``fields`` (empty ones are left to the empty-dimension check),
    the conclusion (a loop) and the raw answer they were parsed from."""
    filled = {dim: text for dim, text in fields.items() if (text or "").strip()}
    joined = " ".join(filled.values())
    loop = repetition(filled)
    if not loop and _loop(words(conclusion)):
        loop = f'the conclusion repeats "{_loop(words(conclusion))}"'
    parsed = len(joined) + len(conclusion or "")
    found = [loop or answer_loop(raw_text, parsed), copied_prompt(filled, prompt) if prompt else "",
             other_language(joined), symbols(filled)]
    return [reason for reason in found if reason]

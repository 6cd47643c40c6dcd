"""A dataset's rationale dimensions after it was made: show them, redefine them, rename one with its text.

The definition lives in ``datasets.dimensions`` (``models.prompts.Dimension``); the text lives under the dimension
names in suggestions, reviews, responses and their histories (``db.dimension_queries``). So:

- a description, the required flag, the order, a new dimension, or dropping one that holds no text: a new
  definition (``rbft dimensions DATASET --set TEXT``);
- a dimension that holds text is renamed, never redefined away: ``--rename old=new`` moves its text in the same
  transaction as the definition, and a definition that would leave text without a dimension is refused, naming
  the dimension, how many rows hold its text and the rename command.

``rbft import`` checks a definition given for an existing dataset the same way (``check_import_dimensions``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any, Optional, Sequence

from db import dimension_queries as dq
from db import queries, writes
from db.engine import init_db, session_scope
from rbft_core.errors import ConfigError
from rbft_core.models.prompts import Dimension, dimensions_from_records, dimensions_text, parse_dimensions

__all__ = ["show_dimensions", "change_dimensions", "parse_renames", "check_import_dimensions"]


def _counts(counts: dict[str, Counter], name: str) -> str:
    found = counts.get(name) or Counter()
    parts = [f"{found[h]} {h if found[h] != 1 else h[:-1]}" for h in dq.HOLDERS if found[h]]
    return ", ".join(parts) or "no text"


def _describe(dims: Sequence[Dimension], counts: dict[str, Counter]) -> list[dict[str, Any]]:
    return [{**d.to_dict(), "rows": sum((counts.get(d.name) or Counter()).values()), "text": _counts(counts, d.name)}
            for d in dims]


def show_dimensions(db_url: Optional[str], dataset: str) -> dict[str, Any]:
    """The dataset's dimensions, each with how many rows hold its text, and the text form ``--set`` reads."""
    init_db(db_url)
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        dims = dimensions_from_records(ds.dimensions, f"dataset {ds.name!r}")
        counts = dq.text_counts(s, ds.id)
    return {"dataset": dataset, "dimensions": _describe(dims, counts), "text": dimensions_text(dims, "; "),
            "notes": []}


def parse_renames(items: Sequence[str]) -> dict[str, str]:
    """``["old=new", ...]`` as {old: new}; each side a dimension name."""
    out: dict[str, str] = {}
    for item in items or ():
        old, sep, new = str(item).partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new:
            raise ConfigError(f"--rename {item!r} must be OLD=NEW, e.g. --rename speech=on_screen_text")
        if old in out:
            raise ConfigError(f"dimension {old!r} is renamed twice ({out[old]!r} and {new!r}); rename it once")
        Dimension(new, "the new name's check")  # a valid, unreserved name
        out[old] = new
    targets = list(out.values())
    twice = sorted({n for n in targets if targets.count(n) > 1})
    if twice:
        raise ConfigError(f"two dimensions cannot both be renamed to {twice[0]!r}")
    return out


def _check_renames(name: str, current: Sequence[Dimension], renames: dict[str, str],
                   counts: dict[str, Counter]) -> None:
    names = [d.name for d in current]
    for old, new in renames.items():
        if old not in names:
            raise ConfigError(f"dataset {name!r} has no dimension {old!r} to rename (its dimensions: "
                              f"{', '.join(names)})")
        if new in names and new not in renames:
            raise ConfigError(f"dataset {name!r} already has a dimension {new!r}; rename {old!r} to another name")
        if counts.get(new) and new not in names:
            raise ConfigError(f"dataset {name!r} still holds text under {new!r} ({_counts(counts, new)}) from a "
                              f"dimension removed earlier; rename {old!r} to another name")


def _refuse_orphans(name: str, renamed: Sequence[Dimension], target: Sequence[Dimension], renames: dict[str, str],
                    counts: dict[str, Counter]) -> list[str]:
    """Refuse a definition that leaves out a dimension holding text; returns the notes of those dropped empty."""
    back = {new: old for old, new in renames.items()}
    kept = {d.name for d in target}
    added = [d.name for d in target if d.name not in {r.name for r in renamed}]
    notes = []
    for dim in renamed:
        if dim.name in kept:
            continue
        stored = back.get(dim.name, dim.name)  # the rows still hold the old name until the rename is applied
        rows = sum((counts.get(stored) or Counter()).values())
        if not rows:
            notes.append(f"dimension {dim.name!r} removed (it held no text)")
            continue
        guess = added[0] if len(added) == 1 else "NEW_NAME"
        raise ConfigError(
            f"dimension {dim.name!r} of dataset {name!r} holds text in {rows} row(s) ({_counts(counts, stored)}); "
            f"the new definition leaves it out, which would orphan that text. Rename it to move the text: `rbft "
            f"dimensions {name} --rename {dim.name}={guess}` (with --set to change the rest in the same step), or keep "
            f"{dim.name!r} in the definition")
    return notes


def change_dimensions(db_url: Optional[str], dataset: str, *, definition: Optional[str] = None,
                      renames: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Rename dimensions (their text moves along) and / or set a new definition (``parse_dimensions`` text), in one
    transaction; refused when a dimension holding text would be left out. Returns ``show_dimensions``'s dict with
    ``notes`` (what changed for suggestions already written)."""
    renames = dict(renames or {})
    init_db(db_url)
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        dq.lock_dataset(s, ds.id)  # saves writing under the old names finish first; later ones see the new
        s.refresh(ds)
        owner = f"dataset {ds.name!r}"
        current = dimensions_from_records(ds.dimensions, owner)
        counts = dq.text_counts(s, ds.id)
        _check_renames(ds.name, current, renames, counts)
        renamed = tuple(replace(d, name=renames.get(d.name, d.name)) for d in current)
        if definition is not None and not definition.strip():
            raise ConfigError(f"--set needs the new definition of {owner}, e.g. --set '{dimensions_text(current, '; ')}'")
        target = renamed if definition is None else parse_dimensions(definition, owner) or renamed
        notes = _refuse_orphans(ds.name, renamed, target, renames, counts)
        moved = dq.rename_keys(s, ds.id, renames)
        dq.set_dimensions(s, ds.id, [d.to_dict() for d in target])
        notes += [f"renamed {old!r} to {new!r}: " + ", ".join(f"{n} {t}" for t, n in moved.items() if n)
                  for old, new in renames.items()]
        old_names = {d.name for d in renamed}
        for dim in target:
            if dim.name not in old_names:
                without = dq.suggestions_without(s, ds.id, dim.name)
                if without:
                    notes.append(f"{without} suggestion(s) were written without {dim.name!r}: `rbft generate "
                                 f"{ds.name} --overwrite` writes newer ones that have it")
        if tuple(target) != tuple(renamed):
            notes.append("the rationale prompt changed: suggestions written before keep their text")
        if tuple(target) != tuple(current):  # which dimensions are required, and their names, are in the flags
            seen, changed = writes.rescore_suggestions(s, ds.id)
            notes.append(f"flags and doubt recomputed for {seen} suggestion(s): {changed} changed")
        counts = dq.text_counts(s, ds.id)
    out = {"dataset": dataset, "dimensions": _describe(target, counts), "text": dimensions_text(target, "; ")}
    return {**out, "notes": notes}


def check_import_dimensions(existing: Any, given: Optional[Sequence[Dimension]], dataset: str,
                            *, from_export: bool = False) -> None:
    """An import into an existing dataset keeps its dimensions: a different definition given is refused (change it
    with ``rbft dimensions``), and so is an export whose dimensions the dataset lacks (their text would be lost)."""
    if existing is None or given is None:
        return
    have = dimensions_from_records(existing.dimensions, f"dataset {dataset!r}")
    names = [d.name for d in have]
    if from_export:
        lost = [d.name for d in given if d.name not in names]
        if lost:
            raise ConfigError(f"the export has the dimension(s) {', '.join(lost)}, which dataset {dataset!r} does not "
                              f"({', '.join(names)}); import it into a new dataset, or add them first with `rbft "
                              f"dimensions {dataset} --set '{dimensions_text((*have, *[d for d in given if d.name in lost]), '; ')}'`")
        return
    if tuple(given) != tuple(have):
        raise ConfigError(f"dataset {dataset!r} already has the dimensions {dimensions_text(have, '; ')!r}, not "
                          f"{dimensions_text(given, '; ')!r}; drop --dimensions, or change them with `rbft dimensions "
                          f"{dataset} --set ...` (`--rename old=new` moves a dimension's text)")

"""The demo report's data: a larger world with a validation split, its datasets, and their rationales.

- ``render_report_world``: the demo world's geometry with more clips (the base model does not depend on the clip
  count, so it is reused), split train / val / test stratified per label; the validation split selects the
  hyperparameters, the test split is only ever used for the final numbers.
- datasets (one report database): ``main`` (all three splits), ``curve-<pct>`` (a nested, stratified share of the
  train labels, for the learning curve), ``no-hint`` (the same clips, rationales written without the label hint).
- ``generate``: the base model writes a rationale per train clip (``models.generate.generate_rationales``);
  ``oracle_review`` rewrites each from the scene graph (a *simulated* expert review, recorded as such);
  ``copy_suggestions`` gives the learning-curve datasets the main dataset's rationales (generation is greedy and
  deterministic, so this equals generating them again).
- ``rationale_stats``: parse rate, exact match with the scene graph, and how often a rationale names a label.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Optional

from sqlalchemy import select

from db import queries
from db.engine import session_scope
from db.models import Dataset, Review, Suggestion, Video
from rbft_core.data.importer import import_videos
from rbft_core.demo.render import WorldSpec, render_world
from rbft_core.models.generate import generate_rationales
from rbft_core.models.prompts import DEFAULT_DIMENSIONS
from rbft_core.specs.data import GenerateSpec

__all__ = ["render_report_world", "import_report_datasets", "generate", "oracle_review", "copy_suggestions",
           "rationale_stats", "ORACLE_REVIEWER", "split_rows", "curve_rows", "curve_name", "names_label"]

ORACLE_REVIEWER = "oracle (simulated expert: scene graph)"


def curve_name(main: str, fraction: float) -> str:
    return f"{main}-curve-{round(100 * fraction)}"


def split_rows(rows: list[dict], *, seed: int, val_fraction: float) -> list[dict]:
    """Move a stratified ``val_fraction`` of each label (counted over all its clips) from train to val."""
    out = [dict(r) for r in rows]
    for label in sorted({r["label"] for r in out}):
        mine = [r for r in out if r["label"] == label]
        train = sorted((r for r in mine if r["split"] == "train"), key=lambda r: r["id"])
        random.Random(f"val:{seed}:{label}").shuffle(train)
        for row in train[: round(len(mine) * val_fraction)]:
            row["split"] = "val"
    return out


def curve_rows(rows: list[dict], fraction: float, *, seed: int) -> list[dict]:
    """A stratified ``fraction`` of the train rows; nested (the 25 % clips are inside the 50 % clips)."""
    out = []
    for label in sorted({r["label"] for r in rows}):
        train = sorted((r for r in rows if r["split"] == "train" and r["label"] == label), key=lambda r: r["id"])
        random.Random(f"curve:{seed}:{label}").shuffle(train)
        out += train[: max(1, round(len(train) * fraction))]
    return sorted(out, key=lambda r: r["id"])


def render_report_world(folder: Path, world: WorldSpec, *, val_fraction: float, fractions: tuple[float, ...],
                        progress=None) -> dict[str, Path]:
    """Render the world and write its manifests: ``main`` and one per learning-curve share below 1."""
    manifest = render_world(folder, world, progress=progress)
    rows = split_rows([json.loads(line) for line in manifest.read_text().splitlines()], seed=world.seed,
                      val_fraction=val_fraction)
    out = {"main": _write(folder / "manifest-report.jsonl", rows)}
    for fraction in fractions:
        if fraction < 1:
            out[f"curve-{round(100 * fraction)}"] = _write(folder / f"manifest-curve-{round(100 * fraction)}.jsonl",
                                                           curve_rows(rows, fraction, seed=world.seed))
    return out


def _write(path: Path, rows: list[dict]) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def import_report_datasets(db_url: Optional[str], main: str, manifests: dict[str, Path], *, no_hint: bool) -> dict:
    """Import every manifest as its own dataset (re-importing is a no-op); returns role -> dataset name."""
    names = {"main": main}
    for role in manifests:
        if role != "main":
            names[role] = f"{main}-{role}"
    if no_hint:
        names["no-hint"] = f"{main}-no-hint"
    for role, name in names.items():
        manifest = manifests["main" if role == "no-hint" else role]
        import_videos(db_url, name, manifest.parent, manifest=manifest, fmt="jsonl", preset="smart-home")
    return names


def generate(db_url: Optional[str], dataset: str, model: str, *, num_frames: int, label_hint: bool,
             batch_size: int = 8, max_new_tokens: int = 96) -> dict:
    """Rationales for the train clips that lack one (resumable: ``generate_rationales`` skips the rest)."""
    spec = GenerateSpec(dataset=dataset, model=model, split="train", num_frames=num_frames, label_hint=label_hint,
                        batch_size=batch_size, max_new_tokens=max_new_tokens)
    return {"spec": spec.to_dict(), **generate_rationales(db_url, dataset, model, spec).to_json()}


def oracle_review(db_url: Optional[str], dataset: str) -> int:
    """Simulated expert review: every train rationale is rewritten from the clip's scene graph and accepted.

    Stands in for the human review step (clearly labelled: the reviewer is ``ORACLE_REVIEWER``); a clip already
    reviewed by the oracle is left alone, so a resumed report does not review twice. Returns the reviews saved.
    """
    saved = 0
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        rows = s.execute(select(Video, Review).join(Review, Review.video_id == Video.id)
                         .where(Video.dataset_id == ds.id, Video.split == "train")).all()
        for video, review in rows:
            graph = (video.meta or {}).get("scene_graph")
            if not graph or review.reviewer == ORACLE_REVIEWER:
                continue
            queries.save_review(s, review.id, expected_version=review.version, reviewer=ORACLE_REVIEWER,
                                status="accepted", **{k: graph[k] for k in queries.dimension_names(s, ds.id)})
            saved += 1
    return saved


def copy_suggestions(db_url: Optional[str], source: str, target: str) -> int:
    """Give ``target``'s clips without a suggestion the newest suggestion of the same clip in ``source``."""
    copied = 0
    columns = ("model_id", "prompt_version", "conclusion", "raw_text", "parse_status", "label_hint",
               "mean_logprob", "gen_params")
    with session_scope(db_url) as s:
        src = {vid.sha256: sug for sug, vid in _suggestions(s, source)}
        tgt = queries.get_dataset(s, target)
        have = set(s.scalars(select(Suggestion.video_id).join(Video).where(Video.dataset_id == tgt.id)))
        for video in s.scalars(select(Video).where(Video.dataset_id == tgt.id).order_by(Video.id)):
            sug = src.get(video.sha256)
            if sug is None or video.id in have:
                continue
            queries.add_suggestion(s, video.id, **(sug.rationale or {}), **{c: getattr(sug, c) for c in columns})
            copied += 1
    return copied


def _suggestions(s, dataset: str):
    """(newest suggestion, video) per train clip of ``dataset``."""
    rows = s.execute(select(Suggestion, Video).join(Video, Video.id == Suggestion.video_id).join(Dataset)
                     .where(Dataset.name == dataset, Video.split == "train").order_by(Suggestion.id)).all()
    newest = {vid.id: (sug, vid) for sug, vid in rows}
    return list(newest.values())


def names_label(text: str, label: str) -> bool:
    """Whether ``text`` names ``label`` as a word ("abnormal" does not name "normal")."""
    return re.search(rf"(?<![a-z]){re.escape(label.lower())}(?![a-z])", (text or "").lower()) is not None


def rationale_stats(db_url: Optional[str], dataset: str, labels: tuple[str, ...] = ("normal", "abnormal")) -> dict:
    """Train suggestions vs scene graphs: parse rate, exact field match, how often the text names a label."""
    with session_scope(db_url) as s:
        pairs = [(sug, vid) for sug, vid in _suggestions(s, dataset)]
        n = len(pairs)
        if not n:
            return {"n": 0}
        graph = [(vid.meta or {}).get("scene_graph", {}) for _, vid in pairs]
        exact = {d.name: sum(((sug.rationale or {}).get(d.name) or "").strip().lower() == g.get(d.name, "").lower()
                             for (sug, _), g in zip(pairs, graph)) / n for d in DEFAULT_DIMENSIONS}
        own = sum(names_label(sug.raw_text, vid.label) for sug, vid in pairs) / n
        other = sum(any(names_label(sug.raw_text, lab) for lab in labels if lab != vid.label) for sug, vid in pairs) / n
        any_label = sum(any(names_label(sug.raw_text, lab) for lab in labels) for sug, _ in pairs) / n
        return {"n": n, "parse_ok": sum(sug.parse_status == "ok" for sug, _ in pairs) / n, "field_exact": exact,
                "names_own_label": own, "names_other_label": other, "names_any_label": any_label,
                "label_hint": bool(pairs[0][0].label_hint),
                "example": {"text": pairs[0][0].raw_text, "truth": graph[0], "label": pairs[0][1].label}}

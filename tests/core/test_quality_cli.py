"""`rbft quality DATASET --json` on responses stored by the review workspace (issue #15 part 3): label alpha equals
the krippendorff package on the exported responses, and the report has suggestion vs final and throughput."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import krippendorff
import numpy as np
import pytest

from rbft_core.cli.main import main
from rbft_core.review import adjudication, responses
from rbft_core.review import workspace as review
from tests.review_world import make_review_world

pytestmark = pytest.mark.both_backends

DIMS = ("subjects", "attributes", "actions", "scenes")
# (clip, reviewer, label): three reviewers, not all on every item, disagreeing on some
LABELS = [("clip_0", "ann", "abnormal"), ("clip_0", "bob", "abnormal"), ("clip_0", "cy", "normal"),
          ("clip_1", "ann", "normal"), ("clip_1", "bob", "normal"),
          ("clip_2", "ann", "abnormal"), ("clip_2", "bob", "normal"), ("clip_2", "cy", "abnormal"),
          ("clip_3", "ann", "normal"), ("clip_3", "cy", "normal"),
          ("clip_4", "bob", "abnormal"), ("clip_4", "cy", "abnormal")]


def _quality(capsys, db_url, *extra):
    assert main(["quality", "homes", "--db", db_url, *extra]) == 0
    return capsys.readouterr().out


def test_quality_json_alpha_equals_the_krippendorff_package_on_the_exported_responses(capsys, tmp_path, db_url,
                                                                                       data_dir):
    ids = make_review_world(db_url, tmp_path / "w", extra=2)
    adjudication.change_settings(db_url, "homes", "admin", reviews_per_item=2)
    shown = (datetime.now(timezone.utc) - timedelta(seconds=40)).isoformat()
    for clip, who, label in LABELS:
        item = review.load_item(db_url, ids[clip])
        fields = dict(item.fields, subjects=f"{who} saw {clip}") if who == "ann" else dict(item.fields)
        responses.save(db_url, ids[clip], expected_version=0, reviewer=who, action="edit", fields=fields,
                       label=label, shown_at=shown)
    final = review.load_item(db_url, ids["clip_1"])
    assert final.status == "ready"
    adjudication.finalise(db_url, ids["clip_1"], expected_version=final.version, adjudicator="cara", action="accept",
                          fields=dict(final.fields, scenes="a front door in the evening"), label="normal")

    report = json.loads(_quality(capsys, db_url, "--json"))
    rows = report["responses"]
    assert len(rows) == len(LABELS) and {r["reviewer"] for r in rows} == {"ann", "bob", "cy"}
    reviewers, items = sorted({r["reviewer"] for r in rows}), sorted({r["item_id"] for r in rows})
    values = sorted({r["label"] for r in rows})
    matrix = np.full((len(reviewers), len(items)), np.nan)
    for r in rows:
        matrix[reviewers.index(r["reviewer"]), items.index(r["item_id"])] = values.index(r["label"])
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert report["labels"]["alpha"]["value"] == pytest.approx(expected, abs=1e-9)
    assert report["labels"]["alpha"]["n_items"] == 5
    assert report["labels"]["cohen_kappa"]["value"] is None  # three reviewers: kappa per pair instead
    assert {tuple(p["reviewers"]) for p in report["labels"]["kappa_by_pair"]} == {("ann", "bob"), ("ann", "cy"),
                                                                                 ("bob", "cy")}
    subjects = report["text"]["subjects"]
    assert subjects["token_f1"]["n_pairs"] == 9 and subjects["token_f1"]["mean"] < 1.0  # ann wrote her own subjects
    scenes = report["edits"]["dimensions"]["scenes"]
    assert scenes["n_items"] == 1 and scenes["n_edited"] == 1 and scenes["mean_distance"] > 0  # the adjudicated one
    by_reviewer = {t["reviewer"]: t for t in report["throughput"]["by_reviewer"]}
    assert by_reviewer["ann"]["n_items"] == 4 and 39 <= by_reviewer["ann"]["median_s_per_item"] < 300
    assert report["throughput"]["by_model"][0]["model_id"] == "Qwen/Qwen2.5-VL-7B-Instruct"

    text = _quality(capsys, db_url, "--plots", str(tmp_path / "plots"))
    assert "Krippendorff's alpha (nominal): " in text and "## Throughput" in text
    for name in ("agreement", "edit_distance", "throughput"):
        assert (tmp_path / "plots" / f"quality-{name}.png").stat().st_size > 1000


def test_two_reviewers_get_cohens_kappa(capsys, tmp_path, db_url, data_dir):
    ids = make_review_world(db_url, tmp_path / "w", extra=1)
    adjudication.change_settings(db_url, "homes", "admin", reviews_per_item=2)
    pairs = {"clip_0": ("abnormal", "abnormal"), "clip_1": ("normal", "abnormal"), "clip_2": ("abnormal", "abnormal"),
             "clip_3": ("normal", "normal")}
    for clip, labels in pairs.items():
        for who, label in zip(("ann", "bob"), labels):
            item = review.load_item(db_url, ids[clip])
            responses.save(db_url, ids[clip], expected_version=0, reviewer=who, action="accept", fields=item.fields,
                           label=label)
    report = json.loads(_quality(capsys, db_url, "--json"))
    p_o, p_e = 3 / 4, (2 / 4) * (1 / 4) + (2 / 4) * (3 / 4)  # ann: 2 abnormal 2 normal; bob: 3 abnormal 1 normal
    assert report["labels"]["cohen_kappa"]["value"] == pytest.approx((p_o - p_e) / (1 - p_e), abs=1e-12)
    assert report["labels"]["cohen_kappa"]["reviewers"] == ["ann", "bob"]
    by_reviewer = {t["reviewer"]: t for t in report["throughput"]["by_reviewer"]}
    assert by_reviewer["ann"]["acceptance_rate"] == 1.0  # accepted as is with the video's labels
    assert by_reviewer["bob"]["acceptance_rate"] == pytest.approx(0.75)  # one label changed: not unchanged

"""Bad inputs that had no test elsewhere (the full catalogue is docs/bad-inputs.md, checked by
``test_every_catalogue_row_points_to_a_real_test``): each is refused with a message naming the fix,
and nothing already stored is lost."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from db import queries
from db.engine import session_scope
from rbft_core.errors import ConfigError, DataError
from rbft_core.data.importer import import_videos
from tests.helpers import make_video

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.both_backends
def test_overlong_id_is_refused_per_row_on_both_databases(db_url, tmp_path):
    """PostgreSQL enforces VARCHAR lengths (SQLite does not): the row is refused before it reaches the database."""
    src = tmp_path / "src"
    make_video(src / "a.mp4", color_seed=1)
    make_video(src / "b.mp4", color_seed=2)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label,id\na.mp4,normal,ok-id\nb.mp4,normal,{'x' * 301}\n")
    report = import_videos(db_url, "ds", src, manifest=manifest, labels=["normal", "abnormal"])
    assert report.imported == 1 and len(report.failed) == 1
    assert "is 301 characters; ids may have at most 300: shorten it in the manifest" in report.failed[0]["error"]


@pytest.mark.both_backends
def test_overlong_label_is_refused_when_the_dataset_is_made(db_url):
    with session_scope(db_url) as s, pytest.raises(ConfigError, match="labels may have at most 100"):
        queries.get_or_create_dataset(s, "ds", labels=["normal", "a" * 101])
    with session_scope(db_url) as s:
        assert queries.find_dataset(s, "ds") is None


def test_evaluate_without_run_or_model_and_on_an_empty_split(world_dataset, tiny_model_dir):
    from rbft_core.specs.training import EvaluateSpec
    from rbft_core.training.evaluate import evaluate_run

    name, url = world_dataset
    with pytest.raises(ConfigError, match=r"needs a run id \(--run\) or a base model \(--model\)"):
        evaluate_run(url, name, cfg=EvaluateSpec(num_frames=2))
    with pytest.raises(DataError, match="has no readable val videos to evaluate on; import some or choose another"):
        evaluate_run(url, name, cfg=EvaluateSpec(num_frames=2, split="val"), model=str(tiny_model_dir))


def test_unknown_export_format_and_stage(world_dataset):
    from rbft_core.export.dataset import ExportConfig

    with pytest.raises(ConfigError, match="format 'parquet' is not supported; use one of"):
        ExportConfig(format="parquet")
    with pytest.raises(ConfigError, match="stage must be 1, 2 or both"):
        ExportConfig(stages="3")


def test_overlong_reviewer_name_saves_nothing(db_url, tmp_path, data_dir):
    from rbft_core.review import workspace as review
    from tests.review_world import make_review_world

    ids = make_review_world(db_url, tmp_path / "w")
    item = review.load_item(db_url, ids["clip_1"])
    with pytest.raises(ConfigError, match="reviewer name is 201 characters; use at most 200"):
        review.save(db_url, item.review_id, expected_version=item.version, reviewer="r" * 201, action="edit",
                    fields={**item.fields, "subjects": "x"}, label=item.label)
    assert review.load_item(db_url, ids["clip_1"]).version == item.version


def _catalogue() -> list[tuple[str, str]]:
    """(path, test name) of every test named in docs/bad-inputs.md (a row may name several)."""
    doc = (REPO_ROOT / "docs" / "bad-inputs.md").read_text(encoding="utf-8")
    rows = [line for line in doc.splitlines() if line.startswith("|") and "`tests/" in line]
    assert len(rows) >= 30
    named = [m.groups() for row in rows for m in re.finditer(r"`(tests/[\w/]+\.py)::(test_\w+)`", row)]
    assert len(named) >= len(rows)
    return list(dict.fromkeys(named))


def test_every_catalogue_row_points_to_a_real_test():
    """docs/bad-inputs.md stays true: >= 30 rows, each naming a test function that exists in that file."""
    for path, name in _catalogue():
        source = (REPO_ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} named in docs/bad-inputs.md is missing"


def test_every_catalogue_test_ran_and_passed_in_this_run():
    """Each named test ran in this very session and passed (tests/outcomes.py records outcomes; this test runs
    last). A skip counts as a failure, except a PostgreSQL variant when no server is required (outside make test).
    Run alone it fails: run the suite (make test), or pass the catalogue's tests along with it."""
    import os

    from tests.outcomes import outcomes_of

    pg_optional = os.environ.get("RBFT_TEST_PG_REQUIRED") != "1"
    problems = []
    for path, name in _catalogue():
        found = outcomes_of(path, name)
        if not found:
            problems.append(f"{path}::{name} did not run in this session")
            continue
        for nodeid, outcome in sorted(found.items()):
            if outcome == "skipped" and pg_optional and nodeid.endswith("[postgresql]"):
                continue
            if outcome != "passed":
                problems.append(f"{nodeid} {outcome}")
        if not any(outcome == "passed" for outcome in found.values()):
            problems.append(f"{path}::{name} never passed")
    assert not problems, "bad-input catalogue rows not proven in this run:\n" + "\n".join(problems)

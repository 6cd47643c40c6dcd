"""A custom five-dimension preset end to end (the moderation preset plus "speech": on-screen text and speech):
import, generate with a tiny model, review, check readiness, train Stage I, export and import the export back.
The browser half (five boxes on the review page, the fifth edited and saved) is
tests/browser/test_dimensions_browser.py."""

from __future__ import annotations

import csv
import json

import pytest

from db import queries
from db.engine import session_scope
from rbft_core.data.importer import import_videos
from rbft_core.errors import ConfigError
from rbft_core.export.dataset import ExportConfig, export_dataset
from rbft_core.models import generate as gen
from rbft_core.models.generate import generate_rationales
from rbft_core.models.loading import load_vlm, sample_spec_for
from rbft_core.review import responses
from rbft_core.review import workspace as review
from rbft_core.review.curation import Selection
from rbft_core.specs.data import GenerateSpec
from rbft_core.specs.training import TrainSpec
from rbft_core.tabs.datasets import create_dataset
from rbft_core.tabs.train import readiness
from rbft_core.training.sft_data import IGNORE_INDEX, VideoSFTCollator, build_examples
from rbft_core.training.train import train_stage
from tests.dimensions_world import FIVE, FIVE_NAMES, make_five_dimension_world

SAID = {"clip_0": "a sign reading 'leave'", "clip_1": "someone shouts 'get out'", "clip_2": "", "clip_3": "a caption"}


def _generate(db_url: str, dataset: str, model: str, monkeypatch) -> list[str]:
    """Generation as a job runs it; returns the prompts the model was given."""
    real, prompts = gen.generate_batch, []

    def recording(lm, batch_prompts, *args, **kwargs):
        prompts.extend(batch_prompts)
        return real(lm, batch_prompts, *args, **kwargs)

    monkeypatch.setattr(gen, "generate_batch", recording)
    report = generate_rationales(db_url, dataset, model, GenerateSpec(batch_size=2, max_new_tokens=16, num_frames=4))
    assert report.generated == 4 and not report.failed
    return prompts


def _review_every_train_item(db_url: str, dataset: str) -> None:
    """The reviewer writes all five dimensions (the optional speech left empty where nothing is said)."""
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        reviews = {v.external_id: v.review.id for v in ds.videos if v.review is not None}
    assert sorted(reviews) == sorted(SAID)
    for ext, rid in sorted(reviews.items()):
        item = responses.load(db_url, rid, "ann")
        assert item.names == FIVE_NAMES
        text = {"subjects": f"a speaker in {ext}", "attributes": "adult, dark jacket", "actions": "talks to the camera",
                "scenes": "a bedroom at night", "speech": SAID[ext]}
        responses.save(db_url, rid, expected_version=item.version, reviewer="ann", action="edit", fields=text,
                       label=None)


def test_a_five_dimension_preset_goes_from_generation_to_export(tmp_path, db_url, data_dir, tiny_model_dir,
                                                                monkeypatch):
    name = make_five_dimension_world(db_url, tmp_path)

    prompts = _generate(db_url, name, str(tiny_model_dir), monkeypatch)
    assert all("in five dimensions:" in p and "- speech (optional: leave it empty when there is none): on-screen "
               "text and speech" in p and '"speech": "...", "conclusion"' in p for p in prompts)
    with session_scope(db_url) as s:
        stored = [v.suggestions[0].rationale for v in queries.get_dataset(s, name).videos if v.suggestions]
    assert stored and all(tuple(text) == FIVE_NAMES for text in stored)  # the parser's keys: the five, in order

    _review_every_train_item(db_url, name)
    item = review.load_item(db_url, review.find_item(db_url, name, "clip_1"))
    assert item.fields["speech"] == "someone shouts 'get out'" and item.status == "accepted"
    assert ("speech", None, "someone shouts 'get out'") in review.history(db_url, item.review_id)[0]["changes"]

    ready = readiness(db_url, name)
    assert ready.ok and ready.rationales["human"] == 4 and ready.rationales["incomplete"] == 0  # speech is optional
    examples, preset, _summary = build_examples(db_url, name, 1)
    assert preset.dimensions == FIVE and len(examples) == 4
    for example in examples:
        target = json.loads(example.target)
        assert tuple(target) == FIVE_NAMES and example.origin == "human"
        assert "in five dimensions:" in example.prompt and "The correct label" not in example.prompt
    assert {json.loads(e.target)["speech"] for e in examples} == set(SAID.values())

    lm = load_vlm(str(tiny_model_dir))
    collator = VideoSFTCollator(lm.processor, sample_spec_for(lm.processor, num_frames=4, max_pixels=4 * 28 * 28))
    batch = collator(examples[:2])
    answer = lm.processor.tokenizer.decode(batch["labels"][0][batch["labels"][0] != IGNORE_INDEX])
    assert answer == examples[0].target + "<|im_end|>"  # the loss falls on the five-dimension target, speech too

    result = train_stage(db_url, TrainSpec(dataset=name, stage=1, model=str(tiny_model_dir), epochs=1,
                                           warmup_ratio=0.0, batch_size=4, lora_rank=8, lora_alpha=16,
                                           num_frames=4, max_pixels=4 * 28 * 28))
    assert result.status == "succeeded" and result.global_step >= 1
    assert (result.run_dir / "adapter" / "adapter_model.safetensors").exists()

    out = export_dataset(db_url, name, ExportConfig(format="llamafactory", stages="both", selection=Selection()),
                         tmp_path / "exports")
    with open(out.folder / "provenance.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = list(rows[0])
    assert [c for c in columns if c.startswith("suggestion_")] == [f"suggestion_{d}" for d in FIVE_NAMES]
    assert [c for c in columns if c.startswith("response_")] == [f"response_{d}" for d in FIVE_NAMES]
    assert {r["external_id"]: r["response_speech"] for r in rows} == SAID
    stage1 = json.loads((out.folder / "stage1_train.json").read_text(encoding="utf-8"))
    assert all(tuple(json.loads(r["messages"][1]["content"])) == FIVE_NAMES for r in stage1)
    manifest = json.loads((out.folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["dataset"]["preset"]["dimensions"] == [d.to_dict() for d in FIVE]
    assert "(subjects, attributes, actions, scenes, speech)" in (out.folder / "README.md").read_text()

    again = import_videos(db_url, "mod5-copy", out.zip_path, fmt="rbft-export")  # the export, read back
    assert again.imported == 4
    with session_scope(db_url) as s:
        copy = queries.get_dataset(s, "mod5-copy")
        assert [d["name"] for d in copy.dimensions] == list(FIVE_NAMES)
        restored = {v.external_id: v.review.id for v in copy.videos}
    for ext, rid in restored.items():
        back = review.load_item(db_url, rid)
        assert back.fields["speech"] == SAID[ext] and back.status == "accepted"
    create_dataset(db_url, "four", preset="moderation", labels="hateful,offensive,normal")  # the paper's four only
    with pytest.raises(ConfigError, match=r"the export has the dimension\(s\) speech, which dataset 'four' does not "
                                          r"\(subjects, attributes, actions, scenes\); import it into a new dataset"):
        import_videos(db_url, "four", out.zip_path, fmt="rbft-export")  # its speech text would have nowhere to go


@pytest.mark.parametrize("empty", ["scenes", "speech"])
def test_readiness_counts_only_required_dimensions_left_empty(tmp_path, db_url, data_dir, empty):
    """A Stage-I target without a required dimension is worth a warning naming it; an empty optional one is not."""
    from tests.dimensions_world import suggest

    name = make_five_dimension_world(db_url, tmp_path)
    ids = suggest(db_url, name)
    item = review.load_item(db_url, ids["clip_0"])
    review.save(db_url, ids["clip_0"], expected_version=item.version, reviewer="ann", action="edit",
                fields={**item.fields, empty: ""}, label=None)
    ready = readiness(db_url, name)
    warned = [w for w in ready.warnings if "leave a required dimension empty" in w]
    if empty == "scenes":
        assert ready.rationales["incomplete"] == 1
        assert warned == ["usable Stage-I rationales leave a required dimension empty (scenes 1): Stage I learns to "
                          "leave it out; fill it in the Review tab (or mark the dimension optional with `rbft "
                          "dimensions mod5 --set ...`)"]
    else:
        assert ready.rationales["incomplete"] == 0 and not warned

"""Dimensions are data: a preset defines them, and the prompt, the parser, the Stage-I target and the checks before
review all follow that one definition (the paper's four by default, word for word what they always were)."""

from __future__ import annotations

import json

import pytest

from rbft_core.errors import ConfigError
from rbft_core.models.prompts import (
    DEFAULT_DIMENSIONS,
    MAX_DIMENSIONS,
    PRESETS,
    Dimension,
    Preset,
    dataset_preset,
    dimensions_from_records,
    dimensions_text,
    parse_dimensions,
    preset_from_record,
    rationale_prompt,
)
from rbft_core.models.rationale import Rationale, parse_rationale, render_target
from rbft_core.review.flags import check_suggestion, expected_prompt

SPEECH = Dimension("speech", "on-screen text and speech", required=False)
FIVE = (*DEFAULT_DIMENSIONS, SPEECH)
NAMES5 = tuple(d.name for d in FIVE)
MODERATION5 = preset_from_record("moderation", dimensions=FIVE)

# The smart-home prompt as it read before dimensions became data: suggestions and the demo model were made with it,
# so the default four must keep it byte for byte (RATIONALE_PROMPT_VERSION stays rationale-v1).
SMART_HOME_PROMPT = """You are a Smart Home Security Expert. Decide whether the home-camera video shows normal activity or an abnormal event.
Keep in mind: security and access, wildlife, pets, children and babies, senior care, household safety.
Watch the video carefully and describe what matters for this decision in four dimensions:
- subjects: who or what appears (people, animals, vehicles, objects)
- attributes: their size, colour, clothing, count and state
- actions: what they do, how they interact, and in what order
- scenes: the place, lighting, time of day and camera view
The correct label for this video is "abnormal". Describe the visual evidence for it.
Answer with JSON only: {"subjects": "...", "attributes": "...", "actions": "...", "scenes": "...", "conclusion": "one sentence naming the label"}"""


def test_the_default_is_the_papers_four_and_their_prompt_is_unchanged():
    assert tuple(d.name for d in DEFAULT_DIMENSIONS) == ("subjects", "attributes", "actions", "scenes")
    assert all(d.required for d in DEFAULT_DIMENSIONS)
    assert PRESETS["moderation"].dimensions == PRESETS["smart-home"].dimensions == DEFAULT_DIMENSIONS
    assert preset_from_record("custom", labels=["ok", "bad"]).dimensions == DEFAULT_DIMENSIONS
    assert rationale_prompt(PRESETS["smart-home"], "abnormal") == SMART_HOME_PROMPT


def test_a_five_dimension_preset_asks_for_five_and_marks_the_optional_one():
    prompt = rationale_prompt(MODERATION5)
    assert "describe what matters for this decision in five dimensions:" in prompt
    assert "- speech (optional: leave it empty when there is none): on-screen text and speech" in prompt
    assert prompt.endswith('"scenes": "...", "speech": "...", "conclusion": "one sentence naming the label"}')
    assert MODERATION5.to_dict()["dimensions"][-1] == {"name": "speech", "description": "on-screen text and speech",
                                                       "required": False}
    assert preset_from_record("moderation", dimensions=MODERATION5.to_dict()["dimensions"]) == MODERATION5


def test_a_preset_without_dimensions_is_refused_naming_it_and_the_fix():
    """docs/bad-inputs.md: a preset without dimensions (in code, in a stored record, as text)."""
    fix = r"give at least one as `name: description`.*or leave the dimensions out for the paper's four"
    with pytest.raises(ConfigError, match=rf"preset 'weld' defines no rationale dimensions; {fix}"):
        Preset(name="weld", role="Weld Inspector", task="t", labels=("ok", "defect"), dimensions=())
    with pytest.raises(ConfigError, match=rf"dataset 'welds' defines no rationale dimensions; {fix}"):
        dataset_preset(type("Row", (), {"name": "welds", "preset": "custom", "role": "", "task": "",
                                        "labels": ["ok", "defect"], "criteria": "", "dimensions": []})())
    with pytest.raises(ConfigError, match=r"`dimensions` defines no rationale dimensions"):
        parse_dimensions(" ; ;", "`dimensions`")
    assert parse_dimensions("", "x") is None  # empty text: the preset's own (not "none")


@pytest.mark.parametrize("name, message", [
    ("Speech", "must be 1-40 lower-case letters, digits or '_', starting with a letter"),
    ("on-screen", "must be 1-40 lower-case letters"),
    ("9lives", "must be 1-40 lower-case letters"),
    ("x" * 41, "must be 1-40 lower-case letters"),
    ("conclusion", "'conclusion' is reserved .* choose another, e.g. 'conclusion_text'"),
    ("label", "'label' is reserved"),
])
def test_a_dimension_name_must_be_a_usable_key(name, message):
    with pytest.raises(ConfigError, match=message):
        Dimension(name, "something")


def test_a_set_of_dimensions_is_checked_as_a_whole():
    with pytest.raises(ConfigError, match="needs a one-line description"):
        Dimension("speech", "  ")
    with pytest.raises(ConfigError, match=r"names the dimension\(s\) speech more than once"):
        dimensions_from_records([SPEECH, Dimension("subjects", "who"), SPEECH])
    with pytest.raises(ConfigError, match="has no required dimension"):
        dimensions_from_records([SPEECH])
    with pytest.raises(ConfigError, match=f"the review form holds at most {MAX_DIMENSIONS}"):
        dimensions_from_records([Dimension(f"d{i}", "x") for i in range(MAX_DIMENSIONS + 1)])
    with pytest.raises(ConfigError, match="needs a description after a colon"):
        parse_dimensions("subjects: who; speech")


def test_dimensions_as_text_round_trip():
    text = dimensions_text(FIVE)
    assert text.splitlines()[-1] == "speech?: on-screen text and speech"
    assert parse_dimensions(text) == FIVE
    assert parse_dimensions(dimensions_text(FIVE, "; ")) == FIVE
    assert parse_dimensions("# comment\nsubjects: who\n\nspeech?: what is said") == (
        Dimension("subjects", "who"), Dimension("speech", "what is said", required=False))


def test_the_parser_reads_the_datasets_dimensions():
    full = {"subjects": "a man", "attributes": "red cap", "actions": "shouts", "scenes": "street", "speech": "go home"}
    parsed = parse_rationale(json.dumps({**full, "conclusion": "This is hateful."}), FIVE)
    assert parsed.status == "ok" and parsed.rationale.dimensions() == full
    no_speech = parse_rationale(json.dumps({**full, "speech": ""}), FIVE)
    assert no_speech.status == "ok" and no_speech.missing == ("speech",)  # an optional one may stay empty
    no_scene = parse_rationale(json.dumps({**full, "scenes": ""}), FIVE)
    assert no_scene.status == "partial" and no_scene.missing == ("scenes",)  # a required one may not
    lines = "Subjects: a man\nSpeech - go home\nOn screen text: EXIT"
    dims = (Dimension("subjects", "who"), Dimension("speech", "said"), Dimension("on_screen_text", "written"))
    assert parse_rationale(lines, dims).rationale.dimensions() == {"subjects": "a man", "speech": "go home",
                                                                  "on_screen_text": "EXIT"}
    assert parse_rationale(json.dumps(full), DEFAULT_DIMENSIONS).rationale.dimensions() == {
        k: v for k, v in full.items() if k != "speech"}  # the four-dimension dataset reads only its own


def test_the_stage1_target_serialises_the_dimensions_in_order():
    r = Rationale({"speech": "« va-t'en »", "subjects": "a man", "scenes": "street"})
    target = render_target(r, NAMES5)
    assert list(json.loads(target)) == list(NAMES5) and "\n" not in target and "«" in target
    assert json.loads(target)["attributes"] == ""
    assert parse_rationale(target, FIVE).rationale == Rationale({n: r[n] for n in NAMES5})


def test_only_required_dimensions_may_not_be_empty_before_review():
    clean = {"subjects": "a man", "attributes": "red cap", "actions": "walks", "scenes": "street"}
    assert check_suggestion(fields={**clean, "speech": ""}, conclusion="", label="normal",
                            labels=["hateful", "normal"], dimensions=FIVE) == []
    found = check_suggestion(fields={**clean, "scenes": "n/a", "speech": ""}, conclusion="", label="normal",
                             labels=["hateful", "normal"], dimensions=FIVE)
    assert [(f.code, f.reason) for f in found] == [("empty_dimension", "scenes is empty")]
    nothing = check_suggestion(fields={}, conclusion="", label="normal", labels=["normal", "hateful"],
                               parse_status="failed", dimensions=FIVE)
    assert [f.reason for f in nothing] == ["all five dimensions are empty"]
    leak = check_suggestion(fields={**clean, "speech": "this is hateful"}, conclusion="", label="hateful",
                            labels=["hateful", "normal"], dimensions=FIVE)
    assert [f.reason for f in leak] == ['speech names the label "hateful"']  # every dimension is checked
    prompt = expected_prompt("moderation", "", "", ("hateful", "offensive", "normal"), "", None, FIVE)
    assert prompt == rationale_prompt(MODERATION5)

"""The automatic checks before review (rbft_core.review.flags), each pinned to hand-made rationales."""

from __future__ import annotations

import math

import pytest

from rbft_core.models.prompts import get_preset, rationale_prompt
from rbft_core.review.doubt import FAILED_POINTS, FLAG_POINTS, SUBJECT_POINTS, doubt_of
from rbft_core.review.flags import (
    ALL_FLAG_BITS,
    FLAG_BITS,
    FLAG_CODES,
    Flag,
    check_suggestion,
    conclusion_labels,
    expected_prompt,
    flag_bits,
    label_mentions,
    masks_with,
)

LABELS = ["normal", "abnormal"]
CLEAN = {"subjects": "a dog", "attributes": "small, brown fur", "actions": "walking by", "scenes": "porch, at night"}
PROMPT = rationale_prompt(get_preset("smart-home"), "normal")


def _flags(label: str = "normal", conclusion: str = "This is normal.", labels=LABELS, **fields) -> dict[str, str]:
    found = check_suggestion(fields={**CLEAN, **fields}, conclusion=conclusion, label=label, labels=labels,
                             prompt=PROMPT)
    return {flag.code: flag.reason for flag in found}


def test_a_clean_rationale_has_no_flag():
    assert _flags() == {}
    assert _flags(subjects="a woman and a small dog", attributes="adult in a red raincoat; small white terrier",
                  actions="the woman unlocks the door and both go inside", scenes="front door, evening") == {}


# ------------------------------------------------------------------------------------------ label leak
@pytest.mark.parametrize("text, reason", [
    ("an abnormal dog", 'attributes names the label "abnormal"'),
    ("Normal clothing", 'attributes names the label "normal"'),
    ("a suspicious, hooded figure", 'attributes names "suspicious" (label abnormal)'),
    ("moving abnormally fast", 'attributes names "abnormally" (label abnormal)'),
    ("nothing  unusual about him", 'attributes names "nothing unusual" (label normal)'),
])
def test_label_word_or_synonym_in_a_dimension_is_a_leak(text, reason):
    assert _flags(attributes=text) == {"label_leak": reason}


@pytest.mark.parametrize("text", ["paranormal glow", "subnormal", "normalized light",
                                  "a normalised image", "unusually-shaped"])
def test_label_words_inside_other_words_are_not_a_leak(text):
    assert "label_leak" not in _flags(scenes=text)


def test_abnormal_is_not_read_as_normal_and_the_conclusion_is_not_checked_for_leaks():
    assert label_mentions("an abnormal event", LABELS) == [("abnormal", "abnormal")]
    assert label_mentions("normal, then abnormal", LABELS) == [("abnormal", "abnormal"), ("normal", "normal")]
    assert _flags(conclusion="This is normal: nothing unusual.") == {}  # the prompt asks the conclusion to name it


def test_custom_labels_use_their_own_words_and_phrases():
    labels = ["fall detected", "no fall"]
    assert label_mentions("an old man, fall-detected by the camera", labels) == [("fall detected", "fall detected")]
    assert _flags(label="no fall", labels=labels, conclusion="No fall.", actions="walking, then a fall") == {}


# ---------------------------------------------------------------------------------------- contradiction
@pytest.mark.parametrize("conclusion, label, named", [
    ("This is abnormal.", "normal", ["abnormal"]),
    ("The video shows normal activity.", "abnormal", ["normal"]),
    ("Not abnormal: a resident comes home.", "normal", ["normal"]),  # two labels: "not abnormal" is normal
    ("Nothing abnormal happens.", "abnormal", ["normal"]),
    ("This isn't normal at all.", "abnormal", ["abnormal"]),
    ("Normal? No, abnormal.", "abnormal", ["normal", "abnormal"]),  # both named: not a contradiction
    ("A courier drops a parcel.", "abnormal", []),
])
def test_the_conclusion_label_is_parsed_with_negations(conclusion, label, named):
    assert conclusion_labels(conclusion, LABELS) == named
    flags = _flags(label=label, conclusion=conclusion)
    if named and label not in named:
        assert flags["contradiction"] == f"conclusion says {' / '.join(named)} but label is {label}"
    else:
        assert "contradiction" not in flags


def test_three_labels_negation_names_no_label():
    labels = ["hateful", "offensive", "normal"]
    assert conclusion_labels("It is not hateful.", labels) == []
    assert _flags(label="hateful", labels=labels, conclusion="offensive, not hateful")["contradiction"] == (
        "conclusion says offensive but label is hateful")


# --------------------------------------------------------------------------------------- empty dimension
@pytest.mark.parametrize("fields, reason", [
    ({"scenes": ""}, "scenes is empty"),
    ({"subjects": "  ", "actions": "N/A"}, "subjects, actions are empty"),
    ({"attributes": "-", "scenes": "none."}, "attributes, scenes are empty"),
])
def test_empty_or_placeholder_dimension(fields, reason):
    assert _flags(**fields)["empty_dimension"] == reason


def test_an_answer_caught_in_a_loop_is_degenerate():
    raw = ('{"subjects": "a dog", "attributes": "small, brown fur", "actions": "walking by", '
           + '"scenes": "porch, at night", ' * 4)
    found = check_suggestion(fields=CLEAN, conclusion="", label="normal", labels=LABELS, raw_text=raw)
    assert found == [Flag("degenerate", 'the answer repeats "scenes porch at night"')]
    once = '{"subjects": "a dog", "attributes": "small, brown fur", "actions": "walking by", "scenes": "porch"}'
    assert check_suggestion(fields=CLEAN, conclusion="", label="normal", labels=LABELS, raw_text=once) == []
    looped = check_suggestion(fields=CLEAN, conclusion="Normal. Normal. Normal.", label="normal", labels=LABELS)
    assert looped == [Flag("degenerate", 'the conclusion repeats "normal"')]


def test_a_failed_parse_only_says_empty():
    found = check_suggestion(fields={}, conclusion="This is abnormal.", label="normal", labels=LABELS,
                             parse_status="failed")
    assert found == [Flag("empty_dimension", "all four dimensions are empty")]


# ------------------------------------------------------------------------------------------- degenerate
@pytest.mark.parametrize("fields, reason", [
    ({"actions": "walking by walking by walking by"}, 'actions repeats "walking by"'),
    ({"attributes": "fur fur fur"}, 'attributes repeats "fur"'),
    ({"scenes": "porch door porch night door porch night porch door night porch door"},
     "scenes repeats itself (3 distinct of 12 words)"),
    ({"actions": "a dog"}, "subjects and actions hold the same text"),
    ({"scenes": "Describe the visual evidence for it"}, 'scenes copies the prompt ("describe the visual evidence for it ...")'),
    ({"scenes": "..."}, 'scenes is the answer template ("...")'),
    ({"scenes": "el perro está en la entrada con una caja por la noche"},
     "looks like Spanish (7 Spanish function words), not English (the prompt's language)"),
    ({"scenes": "Собака сидит на крыльце ночью"}, "written in Cyrillic script, not in English (the prompt's language)"),
    ({"attributes": "小狗，棕色的毛", "scenes": "门廊，晚上"},
     "written in Chinese/Japanese script, not in English (the prompt's language)"),
    ({"scenes": "#### ;;;; !!!! ???"}, "scenes is mostly symbols, not words"),
])
def test_degenerate_text(fields, reason):
    assert _flags(**fields)["degenerate"] == reason


@pytest.mark.parametrize("fields", [
    {"actions": "walks up, walks back, walks up again"},  # two runs, not a loop
    {"scenes": "a driveway in Los Angeles, la la land poster on the door"},  # a few foreign words in English
    {"attributes": "large, dark fur, a package is visible"},
    {"scenes": "café terrace, déjà-vu lighting"},  # accented Latin letters are Latin
])
def test_ordinary_text_is_not_degenerate(fields):
    assert "degenerate" not in _flags(**fields)


# -------------------------------------------------------------------------------------------- orphans
@pytest.mark.parametrize("fields, reason", [
    ({"attributes": "medium, red jacket"}, 'attributes say "jacket" (a person\'s), but subjects name no person'),
    ({"subjects": "a person"}, 'attributes say "fur" (an animal\'s), but subjects name no animal'),
    ({"actions": "the cat runs off"}, 'actions mention "cat", which subjects do not name'),
    ({"subjects": "a courier", "attributes": "brown uniform", "actions": "barking at the door"},
     'actions say "barking" (an animal\'s), but subjects name no animal'),
    ({"actions": "leaving a package"}, 'actions say "leaving a package" (a person\'s), but subjects name no person'),
    ({"subjects": "a man", "attributes": "grey coat", "actions": "gets out of the van"},
     'actions mention "van", which subjects do not name'),
])
def test_attribute_or_action_of_an_unnamed_subject(fields, reason):
    assert _flags(**fields)["orphan_subject"] == reason


@pytest.mark.parametrize("fields", [
    {"subjects": "an animal", "actions": "the dog sniffs the step"},  # "animal" covers any animal
    {"subjects": "two dogs", "actions": "one animal runs"},
    {"subjects": "a child and an adult", "attributes": "small, yellow raincoat", "actions": "the girl waves"},
    {"subjects": "a shape", "attributes": "red jacket, fur"},  # nothing known: not judged
    {"subjects": "a man", "attributes": "grey coat", "actions": "suitcase in hand, tailgating"},  # no cue inside words
])
def test_described_subjects_that_are_named_are_no_orphans(fields):
    assert "orphan_subject" not in _flags(**fields)


# ------------------------------------------------------------------------------------ unsure subject
def test_a_subject_token_below_even_odds_is_unsure():
    def flags(low):
        confidence = {"subjects": {"min_logprob": low, "token": "cat"}, "scenes": {"min_logprob": -5.0, "token": "x"}}
        return {f.code: f.reason for f in check_suggestion(fields=CLEAN, conclusion="normal", label="normal",
                                                           labels=LABELS, confidence=confidence)}

    assert flags(-1.6) == {"uncertain_subject": 'the model was unsure of the subject ("cat" at p = 0.20)'}
    assert flags(-0.6) == {}  # p = 0.55: more likely than not; other dimensions do not count
    assert _flags() == {}  # no confidence recorded (older suggestions): not judged
    whole = {"subjects": {"min_logprob": -1.6, "token": "cat", "logprob": -1.8}}  # the sum, kept since
    found = check_suggestion(fields=CLEAN, conclusion="normal", label="normal", labels=LABELS, confidence=whole)
    assert [f.reason for f in found] == ['the model was unsure of the subject ("a dog" at p = 0.17; "cat" at p = 0.20)']


def test_value_probability_is_the_whole_value_else_its_least_likely_token():
    from rbft_core.models.confidence import value_probability

    assert value_probability({"subjects": {"min_logprob": -0.5, "logprob": math.log(0.25)}}, "subjects") == \
        pytest.approx(0.25)
    assert value_probability({"subjects": {"min_logprob": math.log(0.4)}}, "subjects") == pytest.approx(0.4)
    assert value_probability({"scenes": {"min_logprob": -1.0}}, "subjects") is None
    assert value_probability(None, "subjects") is None and value_probability({}, "subjects") is None


def test_dimension_logprobs_map_values_to_their_tokens():
    from rbft_core.models.confidence import dimension_logprobs, value_spans

    pieces = ['{"', "subjects", '": "', "a", " cat", '", "', "scenes", '": "', "porch", '"}']
    lps = [0.0, -0.01, -0.02, -0.1, -1.7, -0.03, -0.01, -0.02, -0.4, -0.01]
    decode = lambda ids: "".join(pieces[i] for i in ids)  # noqa: E731 - a tokenizer's decode
    fields = {"subjects": "a cat", "attributes": "", "actions": "", "scenes": "porch"}
    assert value_spans(decode(range(10)), fields) == {"subjects": (14, 19), "scenes": (33, 38)}
    assert dimension_logprobs(list(range(10)), lps, decode, fields) == {  # least likely token, and the sum
        "subjects": {"min_logprob": -1.7, "token": "cat", "logprob": -1.8},
        "scenes": {"min_logprob": -0.4, "token": "porch", "logprob": -0.4}}
    twice = '{"scenes": "park", "scenes": "park"}'  # a key written twice: the last one is the parsed one
    assert value_spans(twice, {"scenes": "park"}) == {"scenes": (30, 34)}
    assert value_spans('{"subjects": "a \\"big\\" dog"}', {"subjects": 'a "big" dog'}) == {}  # escaped: no span


# ------------------------------------------------------------------------------------- bits and doubt
def test_flag_bits_and_masks():
    flags = [Flag("label_leak", "x"), {"code": "contradiction", "reason": "y"}]
    assert flag_bits(flags) == FLAG_BITS["label_leak"] | FLAG_BITS["contradiction"]
    assert masks_with(0) == [0]
    assert masks_with(ALL_FLAG_BITS) == list(range(1, ALL_FLAG_BITS + 1))
    assert all(m & FLAG_BITS["degenerate"] for m in masks_with(FLAG_BITS["degenerate"]))
    assert len(masks_with(FLAG_BITS["degenerate"])) == 2 ** (len(FLAG_CODES) - 1)


def test_doubt_puts_flagged_first_by_points_then_likelihood():
    def score(**fields):
        flags = check_suggestion(fields={**CLEAN, **fields}, conclusion=fields.pop("conclusion", "normal"),
                                 label="normal", labels=LABELS)
        return doubt_of(parse_status="ok", fields={**CLEAN, **fields}, conclusion="", label="normal", labels=LABELS,
                        mean_logprob=-1.5, flags=flags)

    clean, orphan, leak = score(), score(attributes="red jacket"), score(scenes="abnormal porch")
    both = score(attributes="red jacket", scenes="abnormal porch")
    assert (clean.score, leak.score, orphan.score, both.score) == (1.5, 101.5, 301.5, 401.5)
    assert both.reason == ('attributes say "jacket" (a person\'s), but subjects name no person; '
                           'scenes names the label "abnormal"')
    failed = doubt_of(parse_status="failed", fields={}, conclusion="", label="normal", labels=LABELS,
                      mean_logprob=-0.1)
    assert failed.score == FAILED_POINTS * 100 + 0.1 > both.score
    long = doubt_of(parse_status="ok", fields=CLEAN, conclusion="", label="normal", labels=LABELS, mean_logprob=None,
                    flags=[Flag("degenerate", "x" * 300)])
    assert len(long.reason) == 200 and long.reason.endswith("…")


def _subject(p: float, token_p: float | None = None) -> dict:
    """dimension_logprobs whose subjects were written at probability p (their least likely token at token_p)."""
    return {"subjects": {"min_logprob": math.log(token_p or p), "token": "dog", "logprob": math.log(p)}}


def test_doubt_grows_with_how_unlikely_the_subject_was():
    """The subject's doubt is SUBJECT_POINTS * (1 - p), continuous: a less likely subject is reviewed sooner, whatever
    side of the unsure-subject flag's line it is on, and the flag adds no points of its own."""
    def doubt(p, token_p=None, **fields):
        confidence = _subject(p, token_p)
        flags = check_suggestion(fields={**CLEAN, **fields}, conclusion="normal", label="normal", labels=LABELS,
                                 confidence=confidence)
        return doubt_of(parse_status="ok", fields={**CLEAN, **fields}, conclusion="", label="normal", labels=LABELS,
                        mean_logprob=-0.5, flags=flags, confidence=confidence)

    sure, coin, unsure, lost = doubt(0.95), doubt(0.5, 0.55), doubt(0.2), doubt(0.01)
    assert SUBJECT_POINTS == 8 and FLAG_POINTS["uncertain_subject"] == 0
    assert sure.score == pytest.approx(100 * 8 * 0.05 + 0.5) and coin.score == pytest.approx(400.5)
    assert lost.score > unsure.score > coin.score > sure.score
    assert unsure.score == pytest.approx(100 * 8 * 0.8 + 0.5)
    assert sure.reason == "likelihood -0.50/token; subject p = 0.95"
    assert coin.reason == "likelihood -0.50/token; subject p = 0.50"  # p = 0.5 for the whole, no token below it
    assert unsure.reason == 'the model was unsure of the subject ("a dog" at p = 0.20; "dog" at p = 0.20)'
    # a coin-toss subject weighs a contradiction; the flags still add up on top of it
    orphan = doubt(0.5, 0.55, attributes="red jacket")
    assert orphan.score == pytest.approx(coin.score + 100 * FLAG_POINTS["orphan_subject"])
    assert orphan.reason.endswith("; subject p = 0.50")
    # no confidence recorded (older suggestions, other callers): no subject term, the reason as before
    plain = doubt_of(parse_status="ok", fields=CLEAN, conclusion="", label="normal", labels=LABELS, mean_logprob=-0.5)
    assert (plain.score, plain.reason) == (0.5, "likelihood -0.50/token")
    # a failed parse stays above the most doubtful subject with every flag
    worst = 100 * (sum(FLAG_POINTS.values()) + SUBJECT_POINTS) + 99.99
    assert doubt_of(parse_status="failed", fields={}, conclusion="", label="normal", labels=LABELS,
                    mean_logprob=-0.1, confidence=_subject(0.01)).score == FAILED_POINTS * 100 + 0.1 > worst


def test_expected_prompt_is_the_generation_prompt_or_empty():
    assert expected_prompt("smart-home", "", "", ("normal", "abnormal"), "", "normal") == PROMPT
    assert expected_prompt("custom", "", "", ("only",), "", None) == ""  # one label: no preset, check skipped

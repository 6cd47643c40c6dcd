"""Review quality metrics (issue #15 part 3): every metric pinned to values worked out by hand on tiny examples
(the arithmetic is in the comments), alpha equal to the ``krippendorff`` package, the undefined cases, unicode
and empty text, the report's JSON and Markdown, and the figures' contents."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import krippendorff
import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from rbft_core.errors import ConfigError
from rbft_core.review import quality_text
from rbft_core.review.quality import (
    ItemRecord, ReliabilityData, Response, Suggestion, check_dimensions, cohen_kappa, export_responses,
    kappa_by_pair, label_alpha, label_kappa, latest_responses, normalise_text, responses_to_reliability,
)
from rbft_core.review.quality_plots import (
    AGREEMENT_SERIES, agreement_figure, edit_distance_figure, throughput_figure, write_quality_plots,
)
from rbft_core.review.quality_report import SCHEMA, quality_report, render_quality_markdown
from rbft_core.review.quality_text import (
    TEXT_ALPHA_METHOD, alpha_with_distance, char_similarity, text_alpha, text_distance, text_similarity, token_f1, tokens,
)
from rbft_core.review.quality_work import (
    accepted_unchanged, by_model, conclusion_changes, edit_metrics, throughput, throughput_over_time,
)

T0 = datetime(2026, 3, 2, 9, 17)
DIMS = ("who", "where", "mood")  # not the four defaults: nothing may assume them


def _labelled(*rows: tuple) -> list[ItemRecord]:
    """Items from rows of labels, one column per reviewer r0, r1, ...; None = no response."""
    return [ItemRecord(i, responses=[Response(i, f"r{k}", label) for k, label in enumerate(row) if label is not None])
            for i, row in enumerate(rows)]


def _texts(dim: str, *rows: tuple) -> list[ItemRecord]:
    return [ItemRecord(i, responses=[Response(i, f"r{k}", dimensions={dim: t}) for k, t in enumerate(row)
                                     if t is not None]) for i, row in enumerate(rows)]


# ----------------------------------------------------------------------------------------------- records
def test_latest_response_per_reviewer_and_normalised_text():
    early, late = Response(1, "ann", "a", saved_at=T0), Response(1, "ann", "b", saved_at=T0 + timedelta(seconds=1))
    untimed = Response(1, "bob", "c")
    item = ItemRecord(1, responses=[late, early, untimed, Response(1, "bob", "d")])
    assert latest_responses(item) == {"ann": late, "bob": Response(1, "bob", "d")}  # ties: the later in the list
    assert normalise_text("  a\t bear\n\nclimbs ") == "a bear climbs"
    assert normalise_text("cafe\u0301") == "caf\u00e9"  # NFC
    assert Response(1, "x", shown_at=T0, saved_at=T0 + timedelta(seconds=42)).seconds == 42.0
    assert Response(1, "x", shown_at=T0, saved_at=T0 - timedelta(seconds=1)).seconds is None
    assert Response(1, "x", saved_at=T0).seconds is None


def test_dimensions_are_checked():
    assert check_dimensions(["who", "where"]) == ("who", "where")
    for bad, words in (([], "empty"), ("who", "string"), (["who", ""], "non-empty"), (["a", "a"], "more than once")):
        with pytest.raises(ConfigError, match=words):
            check_dimensions(bad)


# ----------------------------------------------------------------------------------------------- labels
def test_label_alpha_by_hand():
    # items: (a, a) (a, b) (b, b) (a, b, b) (a): the last pairs with nothing and is left out.
    # coincidences o: item 0 -> o_aa += 2/1; item 1 -> o_ab, o_ba += 1/1; item 2 -> o_bb += 2/1;
    # item 3 (m = 3) -> o_ab, o_ba += 2/2, o_bb += 2/2. So o_aa = 2, o_ab = o_ba = 2, o_bb = 3.
    # n_a = 4, n_b = 5, n = 9. D_o = (o_ab + o_ba) / n = 4/9; D_e = 2 n_a n_b / (n (n-1)) = 40/72 = 5/9.
    # alpha = 1 - (4/9) / (5/9) = 0.2
    items = _labelled(("a", "a"), ("a", "b"), ("b", "b"), ("a", "b", "b"), ("a", None, None))
    result = label_alpha(items)
    assert result.value == pytest.approx(0.2, abs=1e-12)
    assert (result.n_items, result.n_values, result.reason) == (4, 9, None)
    # the three-item example alone: o_aa = 2, o_ab = o_ba = 1, o_bb = 2; n_a = n_b = 3, n = 6;
    # D_o = 2/6, D_e = 18/30, alpha = 1 - (1/3)/(3/5) = 4/9
    assert label_alpha(items[:3]).value == pytest.approx(4 / 9, abs=1e-12)


def test_label_alpha_undefined_cases_say_why():
    nobody_twice = label_alpha(_labelled(("a", None), (None, "b")))
    assert nobody_twice.value is None and "no item is labelled by two reviewers" in nobody_twice.reason
    all_same = label_alpha(_labelled(("a", "a"), ("a", "a", "a")))
    assert all_same.value is None and "every label given is 'a'" in all_same.reason
    blank = label_alpha(_labelled(("a", ""), ("  ", "b")))  # an empty label is no label
    assert blank.value is None and blank.n_items == 0
    assert label_alpha([]).value is None


def test_label_alpha_equals_the_krippendorff_package_on_random_data_with_missing_values():
    rng = np.random.default_rng(15)
    labels = np.array(["normal", "abnormal", "unclear"])
    codes = rng.integers(0, 3, size=(5, 60)).astype(float)
    codes[rng.random(codes.shape) < 0.45] = np.nan
    items = [ItemRecord(f"v{i}", responses=[Response(f"v{i}", f"rev{r}", str(labels[int(codes[r, i])]))
                                            for r in range(5) if not np.isnan(codes[r, i])]) for i in range(60)]
    expected = krippendorff.alpha(reliability_data=codes, level_of_measurement="nominal")
    assert abs(label_alpha(items).value - expected) < 1e-9
    # the exported reliability data, through JSON, gives the package the same number
    exported = ReliabilityData.from_dict(json.loads(json.dumps(responses_to_reliability(items).to_dict())))
    again = krippendorff.alpha(reliability_data=exported.as_array(), level_of_measurement="nominal")
    assert abs(again - expected) < 1e-9


def test_reliability_export_shape():
    items = _labelled(("b", "a"), ("a", None), (None, "a", "b"))
    data = responses_to_reliability(items)
    assert data.to_dict() == {"field": "label", "reviewers": ["r0", "r1", "r2"], "item_ids": [0, 2],
                              "values": ["a", "b"], "matrix": [[1, None], [0, 0], [None, 1]]}
    assert np.array_equal(data.as_array(), np.array([[1, np.nan], [0, 0], [np.nan, 1]]), equal_nan=True)
    texts = responses_to_reliability(_texts("who", ("x", " x "), ("y", None)), "who")
    assert texts.values == ("x",) and texts.matrix == ((0,), (0,))


def test_cohen_kappa_by_hand():
    # A: y y n n y; B: y n n n y. p_o = 4/5. p_e = (3/5)(2/5) + (2/5)(3/5) = 12/25.
    # kappa = (4/5 - 12/25) / (1 - 12/25) = (8/25) / (13/25) = 8/13
    pairs = list(zip("yynny", "ynnny"))
    assert cohen_kappa(pairs).value == pytest.approx(8 / 13, abs=1e-12)
    assert cohen_kappa([("y", "y"), ("n", "n")]).value == 1.0  # p_o = 1, p_e = 1/2
    # complete disagreement: p_o = 0, p_e = (1/2)(1/2) + (1/2)(1/2) = 1/2, kappa = -1
    assert cohen_kappa([("y", "n"), ("n", "y")]).value == pytest.approx(-1.0)
    same = cohen_kappa([("y", "y"), ("y", "y")])
    assert same.value is None and "undefined" in same.reason
    assert cohen_kappa([]).reason == "no item is labelled by both reviewers"


def test_label_kappa_needs_exactly_two_reviewers_and_pairs_cover_more():
    two = _labelled(*zip("yynny", "ynnny"))
    kappa, reviewers = label_kappa(two)
    assert reviewers == ("r0", "r1") and kappa.value == pytest.approx(8 / 13) and kappa.n_items == 5
    three = _labelled(("y", "y", "n"), ("n", "n", "n"), ("y", None, "y"))
    kappa, reviewers = label_kappa(three)
    assert kappa.value is None and "3 reviewers" in kappa.reason and reviewers == ("r0", "r1", "r2")
    pairs = {(a, b): k for a, b, k in kappa_by_pair(three)}
    # r0 vs r1: (y,y) (n,n): kappa 1. r0 vs r2: (y,n) (n,n) (y,y): p_o = 2/3, p_e = (2/3)(1/3) + (1/3)(2/3) = 4/9,
    # kappa = (2/3 - 4/9) / (5/9) = 2/5. r1 vs r2: (y,n) (n,n): p_o = 1/2, p_e = (1/2)(0) + (1/2)(1) = 1/2, kappa 0
    assert pairs[("r0", "r1")].value == 1.0
    assert pairs[("r0", "r2")].value == pytest.approx(0.4)
    assert pairs[("r1", "r2")].value == pytest.approx(0.0)


# ----------------------------------------------------------------------------------------------- text
def test_token_f1_by_hand():
    # {a, bear, climbs, the, porch} vs {the, bear, climbs, steps}: common 3, F1 = 2*3 / (5+4) = 2/3
    assert token_f1("A bear climbs the porch", "the bear, climbs steps") == pytest.approx(2 / 3)
    # multisets: {bear x2, dog} vs {bear, dog x2}: common = min counts = 1 + 1 = 2, F1 = 4/6
    assert token_f1("bear bear dog", "bear dog dog") == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0 and token_f1("...", "") == 1.0  # no tokens on either side
    assert token_f1("a bear", "") == 0.0 and token_f1("cat", "dog") == 0.0
    assert tokens("Straße, CAFE\u0301 ours_1") == ["strasse", "café", "ours_1"]  # casefold, NFC, \w in any script
    assert token_f1("Straße", "STRASSE") == 1.0
    assert token_f1("медведь на крыльце", "Медведь у крыльца") == pytest.approx(2 * 1 / 6)


def test_char_similarity_and_distance_by_hand():
    # kitten -> sitting: 3 edits, longer text 7: similarity 4/7, distance 3/7
    assert char_similarity("kitten", "sitting") == pytest.approx(4 / 7)
    assert text_distance("kitten", "sitting") == pytest.approx(3 / 7)
    assert char_similarity("bär", "bar") == pytest.approx(2 / 3)  # one code point differs out of 3
    assert char_similarity("🐻 bear", "🐻 bears") == pytest.approx(6 / 7)
    assert char_similarity("", "") == 1.0 and text_distance("", "") == 0.0
    assert text_distance("abc", "") == 1.0


def test_text_similarity_means_over_every_reviewer_pair():
    # item 0: "a big bear" / "a bear": F1 = 2*2/(3+2) = 0.8; Levenshtein 4 of 10 -> 0.6
    # item 1: three reviewers "x" "x" "y": pairs (x,x) (x,y) (x,y): F1 1, 0, 0; char 1, 0, 0
    # item 2: one answer only: no pair. Means over 4 pairs: F1 (0.8 + 1) / 4 = 0.45; char (0.6 + 1) / 4 = 0.4
    items = _texts("who", ("a big bear", "a bear"), ("x", "x", "y"), ("z", None))
    scores = text_similarity(items, "who")
    assert scores["token_f1"].mean == pytest.approx(0.45) and scores["char_similarity"].mean == pytest.approx(0.4)
    assert (scores["token_f1"].n_pairs, scores["token_f1"].n_items) == (4, 2)
    empty = text_similarity(items, "where")
    assert empty["token_f1"].mean is None and empty["char_similarity"].n_pairs == 0


def test_text_alpha_by_hand():
    # item 0: "abcd" / "abce" (d = 1/4); item 1: "abcd" / "wxyz" (d = 1). Values abcd x2, abce, wxyz; n = 4.
    # D_o = (2 * 1/4 / 1 + 2 * 1 / 1) / 4 = 0.625.
    # D_e: ordered pairs of values: 2 * (2*1*1/4 [abcd,abce] + 2*1*1 [abcd,wxyz] + 1*1*1 [abce,wxyz]) = 7,
    # / (n (n-1)) = 7/12. alpha = 1 - 0.625 / (7/12) = 1 - 7.5/7 = -1/14
    result = text_alpha(_texts("who", ("abcd", "abce"), ("abcd", "wxyz")), "who")
    assert result.value == pytest.approx(-1 / 14, abs=1e-12)
    assert (result.n_items, result.n_values) == (2, 4) and "Levenshtein" in result.method
    # identical texts everywhere (after normalising whitespace): undefined, and said why
    same = text_alpha(_texts("who", ("a bear", "a  bear "), ("a bear", "a bear")), "who")
    assert same.value is None and "same text" in same.reason
    assert text_alpha(_texts("who", ("alone",)), "who").reason == "no item has answers from two reviewers"
    # empty strings are answers: "" vs "x" is at distance 1, "" vs "" at 0
    # values "", "", "", "x": D_o = (0 + 2*1/1) / 4 = 1/2; D_e = 2*3*1*1 / 12 = 1/2; alpha = 0
    assert text_alpha(_texts("who", ("", ""), ("", "x")), "who").value == pytest.approx(0.0, abs=1e-12)


def test_text_alpha_equals_the_krippendorff_package_with_the_same_distance(monkeypatch):
    rng = np.random.default_rng(7)
    words = ["a bear", "a brown bear", "the dog", "", "ünïcode bär 🐻", "a bear climbs", "porch", "Porch at night"]
    units = [list(rng.choice(words, size=int(rng.integers(1, 5)))) for _ in range(40)]
    values = sorted({v for u in units for v in u})
    index = {v: i for i, v in enumerate(values)}
    counts = np.zeros((len(units), len(values)), dtype=int)
    for k, unit in enumerate(units):
        for v in unit:
            counts[k, index[v]] += 1
    table = np.array([[Levenshtein.normalized_distance(a, b) for b in values] for a in values])

    def distance(v1, v2, i1, i2, n_v, dtype=np.float64):
        return table[i1, i2]

    expected = krippendorff.alpha(value_counts=counts, value_domain=np.arange(len(values)),
                                  level_of_measurement=distance)
    result = alpha_with_distance(units, Levenshtein.normalized_distance)
    assert result.reason is None and abs(result.value - expected) < 1e-9 and result.method == TEXT_ALPHA_METHOD
    monkeypatch.setattr(quality_text, "_BLOCK_CELLS", 5)  # many blocks of the all-pairs sum: the same number
    assert abs(alpha_with_distance(units, Levenshtein.normalized_distance).value - expected) < 1e-9


def test_text_alpha_estimates_expected_disagreement_from_a_seeded_sample_above_the_pair_budget():
    rng = np.random.default_rng(3)
    words = [f"{a} {b}" for a in ("a bear", "the dog", "a cat", "two birds", "🐻") for b in ("runs", "sits", "on a porch",
                                                                                           "at night", "", "eats")]
    units = [list(rng.choice(words, size=2)) for _ in range(200)]  # 30 distinct answers: 435 pairs of them
    exact = alpha_with_distance(units, Levenshtein.normalized_distance, max_pairs=435)
    sampled = alpha_with_distance(units, Levenshtein.normalized_distance, max_pairs=434)
    assert exact.method == TEXT_ALPHA_METHOD and "estimated from 434 random pairs of answers (seed 0)" in sampled.method
    assert abs(sampled.value - exact.value) < 0.05  # 434 pairs: the mean distance is known to about 1%
    assert sampled == alpha_with_distance(units, Levenshtein.normalized_distance, max_pairs=434)  # seeded
    assert sampled.value != exact.value
    with pytest.raises(ConfigError, match="max_pairs"):
        alpha_with_distance(units, Levenshtein.normalized_distance, max_pairs=0)


# ----------------------------------------------------------------------------------------------- edits
def _edited_items() -> list[ItemRecord]:
    s = Suggestion({"who": "a bear", "where": "porch"}, "It is abnormal.", "abnormal", "m1", "v1")
    return [
        ItemRecord(0, s, {"who": "a big bear", "where": "porch"}, "normal"),  # who: 4 of 10 -> 0.4
        ItemRecord(1, s, {"who": "a  bear ", "where": "porch"}, "abnormal"),  # whitespace only: unedited
        ItemRecord(2, Suggestion({"where": "porch"}, label=None), {"who": "a fox", "where": "yard"}, "normal"),
        ItemRecord(3, s, {"where": "porch"}, None),  # no final "who": left out of who
        ItemRecord(4, s, None, None),  # no final at all
        ItemRecord(5, None, {"who": "x"}, "normal"),  # no suggestion
    ]


def test_edit_metrics_by_hand():
    edits = edit_metrics(_edited_items(), ["who", "where"])
    who, where = edits["who"].to_dict(), edits["where"].to_dict()
    # who: 0.4, 0.0, 1.0 (the model wrote nothing: "" -> "a fox"); mean 1.4/3, median 0.4, 2 of 3 edited
    assert edits["who"].distances == pytest.approx((0.4, 0.0, 1.0))
    assert who["n_items"] == 3 and who["n_edited"] == 2 and who["share_edited"] == pytest.approx(2 / 3)
    assert who["mean_distance"] == pytest.approx(1.4 / 3) and who["median_distance"] == pytest.approx(0.4)
    assert who["histogram"]["counts"] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1]  # 0.4 in [0.4, 0.5), 1.0 in [0.9, 1.0]
    assert who["histogram"]["edges"][0] == 0.0 and who["histogram"]["edges"][-1] == 1.0
    # where: porch, porch, porch -> yard (4 edits of 5: 0.8), porch: one of four edited; median of 0, 0, 0, 0.8 = 0
    assert where["n_items"] == 4 and where["share_edited"] == 0.25 and where["median_distance"] == 0.0
    assert edits["where"].distances == pytest.approx((0.0, 0.0, 0.8, 0.0))
    nothing = edit_metrics([], ["who"])["who"].to_dict()
    assert nothing["share_edited"] is None and nothing["mean_distance"] is None


def test_conclusion_changes_by_hand():
    # compared: item 0 (abnormal -> normal, changed), item 1 (abnormal -> abnormal); the rest lack a label
    share = conclusion_changes(_edited_items())
    assert share.to_dict() == {"n_items": 2, "n_changed": 1, "share": 0.5}


def test_accepted_unchanged():
    s = Suggestion({"who": "a bear", "where": "porch"}, "It is abnormal.", "abnormal", "m1", "v1")
    item = ItemRecord(0, s)
    dims = ["who", "where"]
    assert accepted_unchanged(Response(0, "a", "abnormal", {"who": " a bear", "where": "porch"}), item, dims) is True
    assert accepted_unchanged(Response(0, "a", None, {}), item, dims) is True  # nothing changed
    assert accepted_unchanged(Response(0, "a", "abnormal", {"who": "a cub"}), item, dims) is False
    assert accepted_unchanged(Response(0, "a", "normal", {}), item, dims) is False
    assert accepted_unchanged(Response(0, "a", conclusion="It is normal."), item, dims) is False
    assert accepted_unchanged(Response(0, "a", model_id="m2"), item, dims) is None  # started from another model
    assert accepted_unchanged(Response(0, "a", model_id="m1", prompt_version="v1"), item, dims) is True
    assert accepted_unchanged(Response(0, "a", "normal", accepted_unchanged=True), item, dims) is True  # given wins
    assert accepted_unchanged(Response(0, "a"), ItemRecord(0), dims) is None  # no suggestion


# ----------------------------------------------------------------------------------------------- throughput
def _timed(item_id, reviewer, seconds, *, start=T0, **kw) -> Response:
    saved = None if seconds is None else start + timedelta(seconds=seconds)
    return Response(item_id, reviewer, shown_at=start, saved_at=saved, **kw)


def _work_items() -> list[ItemRecord]:
    s = Suggestion({"who": "a bear"}, label="abnormal", model_id="m1", prompt_version="v1")
    return [
        ItemRecord(0, s, responses=[_timed(0, "ann", 30, label="abnormal", dimensions={"who": "a bear"}),
                                    _timed(0, "bob", 20, label="normal")]),
        ItemRecord(1, s, responses=[_timed(1, "ann", 50, label="abnormal", dimensions={"who": "a cub"})]),
        ItemRecord(2, s, responses=[_timed(2, "ann", 100, model_id="m2", prompt_version="v1")]),
        ItemRecord(3, s, responses=[_timed(3, "ann", 4000)]),  # over the 1800 s idle cap
        ItemRecord(4, s, responses=[_timed(4, "ann", None)]),  # never saved with a time
    ]


def test_throughput_per_reviewer_by_hand():
    ann, bob = (t.to_dict() for t in throughput(_work_items(), ["who"]))
    # ann: 5 items; timed 30, 50, 100 (4000 idle, one untimed): 3 items in 180 s -> 3600 * 3 / 180 = 60 per hour;
    # median of 30, 50, 100 = 50. Acceptance: item 0 accepted, item 1 edited, item 2 another model (unknown),
    # items 3 and 4 unchanged -> 3 of 4 judged
    assert (ann["n_items"], ann["n_timed"], ann["n_idle"], ann["n_untimed"]) == (5, 3, 1, 1)
    assert ann["items_per_hour"] == pytest.approx(60.0) and ann["median_s_per_item"] == 50.0
    assert (ann["n_judged"], ann["n_accepted"], ann["acceptance_rate"]) == (4, 3, 0.75)
    # bob: one item in 20 s -> 180 per hour; changed the label -> acceptance 0
    assert bob["items_per_hour"] == pytest.approx(180.0) and bob["acceptance_rate"] == 0.0
    capped = throughput(_work_items(), ["who"], max_item_s=40)[0].to_dict()
    assert capped["n_timed"] == 1 and capped["median_s_per_item"] == 30.0  # 50, 100 and 4000 s count as idle
    with pytest.raises(ConfigError, match="max_item_s"):
        throughput(_work_items(), ["who"], max_item_s=0)


def test_throughput_per_model_and_prompt_version():
    groups = {t.key: t.to_dict() for t in throughput(_work_items(), ["who"], by_model)}
    # m1/v1 (the item's suggestion): ann 30, 50, 4000 (idle), untimed; bob 20 -> timed 30, 50, 20 = 100 s for 3
    assert set(groups) == {("m1", "v1"), ("m2", "v1")}
    assert groups[("m1", "v1")]["n_items"] == 5 and groups[("m1", "v1")]["items_per_hour"] == pytest.approx(108.0)
    assert groups[("m1", "v1")]["median_s_per_item"] == 30.0
    assert groups[("m2", "v1")]["n_judged"] == 0 and groups[("m2", "v1")]["acceptance_rate"] is None


def test_throughput_over_time_bins():
    def save(i, reviewer, minute):
        return ItemRecord(i, responses=[Response(i, reviewer, saved_at=T0.replace(minute=0) + timedelta(minutes=minute))])

    # ann saves at 09:17, 09:45, 10:05; bob at 09:50. Hourly bins from 09:00: ann 2, 1; bob 1, 0 (per hour)
    items = [save(0, "ann", 17), save(1, "ann", 45), save(2, "ann", 65), save(3, "bob", 50)]
    over = throughput_over_time(items)
    assert over["bin_s"] == 3600.0 and over["bins"] == ["2026-03-02T09:00:00", "2026-03-02T10:00:00"]
    assert over["series"] == [{"reviewer": "ann", "items_per_hour": [2.0, 1.0]},
                              {"reviewer": "bob", "items_per_hour": [1.0, 0.0]}]
    # half-hour bins 09:00, 09:30, 10:00: ann 1, 1, 1 saves -> 2 per hour each; bob 0, 1, 0 -> 0, 2, 0
    half = throughput_over_time(items, bin_s=1800)
    assert half["series"][0]["items_per_hour"] == [2.0, 2.0, 2.0] and half["series"][1]["items_per_hour"] == [0, 2, 0]
    weeks = throughput_over_time(items + [save(4, "bob", 90 * 24 * 60)])  # a span of 90 days: weekly bins
    assert weeks["bin_s"] == 7 * 86400.0 and weeks["bins"][0] == "2026-03-02T00:00:00"
    with pytest.raises(ConfigError, match="bins"):
        throughput_over_time(items, bin_s=1)
    assert throughput_over_time([]) == {"bin_s": None, "bins": [], "series": []}


# ----------------------------------------------------------------------------------------------- report
def _world() -> list[ItemRecord]:
    """Three reviewers over six items, with the dimensions of DIMS, a unicode text and an empty one."""
    s = Suggestion({"who": "a bear", "where": "porch", "mood": "calm"}, "It is abnormal.", "abnormal", "m1", "v1")
    items = []
    for i in range(6):
        responses = []
        for k, reviewer in enumerate(("ann", "bob", "cy")):
            if k == 2 and i % 2:
                continue
            responses.append(Response(
                i, reviewer, ("abnormal", "normal")[(i + k) % 2],
                {"who": ("a bear", "a brown bear", "ours brun 🐻")[k], "where": "porch", "mood": "" if k else "calm"},
                shown_at=T0 + timedelta(minutes=10 * i), saved_at=T0 + timedelta(minutes=10 * i, seconds=20 + k)))
        items.append(ItemRecord(i, s, {"who": "a brown bear", "where": "porch", "mood": "calm"}, "normal", responses))
    return items


def test_quality_report_is_json_and_follows_the_given_dimensions():
    report = quality_report(_world(), DIMS, include_reliability=True)
    text = json.dumps(report, allow_nan=False)  # no NaN anywhere: undefined values are null with a reason
    assert json.loads(text) == report
    assert report["schema"] == SCHEMA and report["dimensions"] == list(DIMS)
    assert set(report["text"]) == set(DIMS) and set(report["edits"]["dimensions"]) == set(DIMS)
    assert report["counts"] == {"items": 6, "responses": 15, "reviewers": 3, "items_with_two_or_more": 6}
    assert report["labels"]["alpha"]["value"] == label_alpha(_world()).value
    assert report["labels"]["cohen_kappa"]["value"] is None and len(report["labels"]["kappa_by_pair"]) == 3
    assert report["text"]["where"]["alpha"]["value"] is None  # everyone wrote "porch"
    assert report["text"]["where"]["token_f1"]["mean"] == 1.0
    assert report["edits"]["dimensions"]["who"]["share_edited"] == 1.0  # "a bear" -> "a brown bear" everywhere
    assert report["reliability"]["label"] == responses_to_reliability(_world()).to_dict()
    assert {t["reviewer"] for t in report["throughput"]["by_reviewer"]} == {"ann", "bob", "cy"}
    assert [(t["model_id"], t["prompt_version"]) for t in report["throughput"]["by_model"]] == [("m1", "v1")]
    assert all(report["methods"][k] for k in ("label_alpha", "text_alpha", "char_similarity", "edit_distance"))
    assert "reliability" not in quality_report(_world(), DIMS)


def test_report_alpha_equals_the_package_on_the_exported_responses():
    items = _world()
    report = json.loads(json.dumps(quality_report(items, DIMS)))
    rows = export_responses(items, DIMS)
    reviewers = sorted({r["reviewer"] for r in rows})
    item_ids = sorted({r["item_id"] for r in rows})
    labels = sorted({r["label"] for r in rows})
    matrix = np.full((len(reviewers), len(item_ids)), np.nan)
    for r in rows:
        matrix[reviewers.index(r["reviewer"]), item_ids.index(r["item_id"])] = labels.index(r["label"])
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert abs(report["labels"]["alpha"]["value"] - expected) < 1e-9
    assert rows[0] == {"item_id": 0, "reviewer": "ann", "label": "abnormal",
                       "dimensions": {"who": "a bear", "where": "porch", "mood": "calm"}, "conclusion": None,
                       "shown_at": "2026-03-02T09:17:00", "saved_at": "2026-03-02T09:17:20", "seconds": 20.0,
                       "model_id": "", "prompt_version": ""}


def test_markdown_names_every_dimension_metric_and_undefined_reason():
    report = quality_report(_world(), DIMS)
    md = render_quality_markdown(report)
    for d in DIMS:
        assert f"| {d} |" in md
    assert "Krippendorff's alpha (nominal):" in md and "n/a (3 reviewers gave labels" in md
    assert "n/a (every answer is the same text" in md
    assert "| ann vs bob |" in md and "## Methods" in md and report["methods"]["text_alpha"] in md


# ----------------------------------------------------------------------------------------------- plots
def test_agreement_figure_has_one_bar_per_defined_value():
    report = quality_report(_world(), DIMS)
    fig = agreement_figure(report)
    ax = fig.axes[0]
    defined = [report["text"][d][key][value_key] for key, value_key, _ in AGREEMENT_SERIES for d in DIMS]
    heights = sorted(round(b.get_height(), 9) for b in ax.patches)
    assert heights == sorted(round(v, 9) for v in defined if v is not None)
    assert sum(t.get_text() == "n/a" for t in ax.texts) == sum(v is None for v in defined) == 1
    assert [t.get_text() for t in ax.get_xticklabels()] == list(DIMS)


def test_edit_distance_figure_has_one_histogram_per_dimension():
    report = quality_report(_world(), DIMS)
    fig = edit_distance_figure(report)
    assert len(fig.axes) == len(DIMS)
    for ax, d in zip(fig.axes, DIMS):
        counts = report["edits"]["dimensions"][d]["histogram"]["counts"]
        assert [b.get_height() for b in ax.patches] == counts and d in ax.get_title()
    assert len(edit_distance_figure(quality_report(_world(), ["who", "where", "mood", "who2", "x"])).axes) == 5


def test_throughput_figure_has_one_line_per_reviewer(tmp_path):
    report = quality_report(_world(), DIMS, bin_s=900)
    ax = throughput_figure(report).axes[0]
    assert [line.get_label() for line in ax.lines] == ["ann", "bob", "cy"]
    assert [list(line.get_ydata()) for line in ax.lines] == [s["items_per_hour"] for s in report["over_time"]["series"]]
    assert len(ax.lines[0].get_xdata()) == len(report["over_time"]["bins"]) == 4  # 09:17-10:07 in 15-minute bins
    files = write_quality_plots(report, tmp_path / "plots")
    assert sorted(files) == ["agreement", "edit_distance", "throughput"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in files.values())
    nothing = quality_report([], DIMS)
    empty = throughput_figure(nothing).axes[0]
    assert len(empty.lines) == 0 and [t.get_text() for t in empty.texts] == ["no saved responses"]
    no_bars = agreement_figure(nothing).axes[0]  # every value undefined: no bar, an "n/a" in each place
    assert len(no_bars.patches) == 0 and [t.get_text() for t in no_bars.texts] == ["n/a"] * 9


def test_an_empty_report_renders():
    md = render_quality_markdown(quality_report([], DIMS))
    assert "0 items, 0 responses from 0 reviewers" in md
    assert "n/a (no item is labelled by two reviewers)" in md

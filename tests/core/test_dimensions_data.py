"""A dataset stores its dimensions: defined at creation (Datasets tab, import), shown and redefined afterwards, and a
dimension that holds text is renamed with its text in every row, never redefined away (``rbft dimensions``)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from db import queries
from db.engine import session_scope
from db.models import ResponseRevision, Review, ReviewResponse, ReviewRevision, Suggestion
from rbft_core.cli.main import main
from rbft_core.data.dimensions import change_dimensions, show_dimensions
from rbft_core.errors import ConfigError
from rbft_core.review import adjudication, responses
from rbft_core.review import workspace as review
from rbft_core.tabs import datasets as tab
from rbft_core.review.items import ReviewFilter
from tests.dimensions_world import FIVE_NAMES, FIVE_TEXT, LABELS, make_five_dimension_world, suggest
from tests.review_world import queue_order

pytestmark = pytest.mark.both_backends


@pytest.fixture
def mod5(tmp_path, db_url, data_dir):
    """Five dimensions, a suggestion per clip, clip_0 reviewed (speech edited, a revision and the mirrored
    response), clip_2 answered by two reviewers (k = 2: responses and their history)."""
    name = make_five_dimension_world(db_url, tmp_path)
    ids = suggest(db_url, name)
    item = review.load_item(db_url, ids["clip_0"])
    review.save(db_url, ids["clip_0"], expected_version=item.version, reviewer="ann", action="edit",
                fields={**item.fields, "speech": "a sign reading 'leave now'"}, label=None)
    adjudication.change_settings(db_url, name, "admin", reviews_per_item=2)
    for who in ("bob", "cid"):
        shown = responses.load(db_url, ids["clip_2"], who)
        responses.save(db_url, ids["clip_2"], expected_version=0, reviewer=who, action="edit",
                       fields={**shown.fields, "speech": f"{who} heard 'go away'"}, label="hateful")
    return name, ids


def _rows_with(db_url: str, key: str) -> dict[str, int]:
    """How many rows of each table hold ``key`` as a dimension."""
    with session_scope(db_url) as s:
        return {
            "suggestions": sum(key in (r or {}) for r in s.scalars(select(Suggestion.rationale))),
            "reviews": sum(key in (r or {}) for r in s.scalars(select(Review.rationale))),
            "responses": sum(key in (r or {}) for r in s.scalars(select(ReviewResponse.rationale))),
            "review_revisions": sum(key in (b or {}) or key in (a or {})
                                    for b, a in s.execute(select(ReviewRevision.before, ReviewRevision.after))),
            "response_revisions": sum(key in ((b or {}).get("rationale") or {}) or key in ((a or {}).get("rationale")
                                                                                          or {})
                                      for b, a in s.execute(select(ResponseRevision.before, ResponseRevision.after))),
        }


def test_the_datasets_tab_creates_a_dataset_with_its_own_dimensions(db_url, data_dir):
    fields = tab.preset_fields("moderation")
    assert fields["dimensions"].splitlines()[0] == "subjects: who or what appears (people, animals, vehicles, objects)"
    made = tab.create_dataset(db_url, "mod5", preset="moderation", labels=",".join(LABELS), dimensions=FIVE_TEXT)
    assert made["dimensions"] == list(FIVE_NAMES)
    detail = tab.dataset_detail(db_url, "mod5")
    assert detail["dimensions"][-1] == {"name": "speech", "description": "on-screen text and speech", "required": False}
    plain = tab.create_dataset(db_url, "plain", preset="moderation", labels=",".join(LABELS))
    assert plain["dimensions"] == ["subjects", "attributes", "actions", "scenes"]
    with pytest.raises(ConfigError, match="dataset 'bad' defines no rationale dimensions"):
        tab.create_dataset(db_url, "bad", preset="moderation", dimensions="# none yet\n\n  ")


def test_an_import_keeps_the_datasets_dimensions(db_url, tmp_path, data_dir):
    from rbft_core.data.importer import import_videos
    from rbft_core.models.prompts import DEFAULT_DIMENSIONS

    name = make_five_dimension_world(db_url, tmp_path, clips=3)
    with pytest.raises(ConfigError, match=r"dataset 'mod5' already has the dimensions .*drop --dimensions, or change "
                                          r"them with `rbft dimensions mod5 --set \.\.\.`"):
        import_videos(db_url, name, tmp_path / "clips", manifest=tmp_path / "mod5.csv", labels=LABELS,
                      dimensions=DEFAULT_DIMENSIONS)
    again = import_videos(db_url, name, tmp_path / "clips", manifest=tmp_path / "mod5.csv", labels=LABELS)
    assert again.unchanged == 3 and show_dimensions(db_url, name)["text"] == FIVE_TEXT.replace("\n", "; ")


def test_renaming_a_dimension_moves_its_text_in_every_row(db_url, mod5, capsys):
    name, ids = mod5
    before = _rows_with(db_url, "speech")
    assert all(before.values()), before
    assert main(["dimensions", name, "--rename", "speech=on_screen", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "on_screen (optional): on-screen text and speech" in out and "note: renamed 'speech' to 'on_screen'" in out
    assert _rows_with(db_url, "speech") == dict.fromkeys(before, 0)
    assert _rows_with(db_url, "on_screen") == before  # every row that held it holds it under the new name
    item = review.load_item(db_url, ids["clip_0"])
    assert item.names == (*FIVE_NAMES[:4], "on_screen") and item.fields["on_screen"] == "a sign reading 'leave now'"
    assert item.stored["on_screen"] == "a sign reading 'leave now'" and item.edited
    changes = review.history(db_url, ids["clip_0"])[0]["changes"]
    assert ("on_screen", None, "a sign reading 'leave now'") in changes
    shown = json.loads(capsys.readouterr().out or "{}") if main(["dimensions", name, "--json", "--db", db_url]) == 0 \
        else None
    assert [d["name"] for d in shown["dimensions"]] == [*FIVE_NAMES[:4], "on_screen"]
    # rows holding text: the 3 suggestions with speech (even clips), clip_0's review, 3 responses (ann's, bob's, cid's)
    assert (shown["dimensions"][-1]["rows"], shown["dimensions"][-1]["text"]) == (
        7, "3 suggestions, 1 review, 3 responses")


def test_a_redefinition_that_would_orphan_text_is_refused_naming_the_rename(db_url, mod5, capsys):
    """docs/bad-inputs.md: renaming a dimension that has data by redefining it."""
    name, _ids = mod5
    before = show_dimensions(db_url, name)
    held = before["dimensions"][-1]
    renamed = FIVE_TEXT.replace("speech?:", "on_screen_text?:")
    assert main(["dimensions", name, "--set", renamed, "--db", db_url]) == 2
    err = capsys.readouterr().err
    assert f"dimension 'speech' of dataset 'mod5' holds text in {held['rows']} row(s) ({held['text']})" in err
    assert "would orphan that text. Rename it to move the text: `rbft dimensions mod5 --rename " \
           "speech=on_screen_text` (with --set to change the rest in the same step)" in err
    assert show_dimensions(db_url, name) == before  # nothing changed
    assert _rows_with(db_url, "on_screen_text") == dict.fromkeys(_rows_with(db_url, "speech"), 0)
    result = change_dimensions(db_url, name, definition=renamed, renames={"speech": "on_screen_text"})
    assert [d["name"] for d in result["dimensions"]][-1] == "on_screen_text"
    assert (result["dimensions"][-1]["rows"], result["dimensions"][-1]["text"]) == (held["rows"], held["text"])


def test_descriptions_the_required_flag_and_new_dimensions_are_a_plain_redefinition(db_url, mod5):
    name, ids = mod5
    text = FIVE_TEXT.replace("speech?: on-screen text and speech", "speech: what is said or written") + \
        "\nsymbols?: flags, gestures and signs"
    result = change_dimensions(db_url, name, definition=text)
    assert [(d["name"], d["required"]) for d in result["dimensions"]][-2:] == [("speech", True), ("symbols", False)]
    notes = " ".join(result["notes"])
    assert "6 suggestion(s) were written without 'symbols': `rbft generate mod5 --overwrite`" in notes
    assert "the rationale prompt changed" in notes
    item = review.load_item(db_url, ids["clip_0"])
    assert item.names[-1] == "symbols" and item.fields["symbols"] == "" and item.fields["speech"] == \
        "a sign reading 'leave now'"
    dropped = change_dimensions(db_url, name, definition=text.rsplit("\n", 1)[0])  # it held no text: it may go
    assert "dimension 'symbols' removed (it held no text)" in dropped["notes"]
    with pytest.raises(ConfigError, match=r"dataset 'mod5' has no dimension 'sound' to rename \(its dimensions: "):
        change_dimensions(db_url, name, renames={"sound": "audio"})
    with pytest.raises(ConfigError, match="dataset 'mod5' already has a dimension 'scenes'"):
        change_dimensions(db_url, name, renames={"speech": "scenes"})
    with pytest.raises(ConfigError, match="'label' is reserved"):
        change_dimensions(db_url, name, renames={"speech": "label"})


def test_making_a_dimension_required_recomputes_the_flags_the_queue_and_the_counters(db_url, mod5):
    """Flags follow the definition: speech made required flags the clips that have none (and the queue and its
    counters follow); made optional again, the flag goes."""
    from db import counters
    from rbft_core.review.doubt import FLAG_POINTS
    from rbft_core.review.flags import FLAG_BITS

    name, ids = mod5
    empty = FLAG_BITS["empty_dimension"]

    def state():
        with session_scope(db_url) as s:
            ds = queries.get_dataset(s, name)
            rows = {}
            for v in ds.videos:
                sug = s.get(Suggestion, v.review.suggestion_id)
                rows[v.external_id] = (sug.flag_bits, v.review.flag_bits, v.review.queue_key, sug.doubt_score,
                                       sug.doubt_reason)
            assert counters.stored(s, ds.id) == counters.recount(s, ds.id)
        return rows

    before = state()
    assert not any(bits & empty for bits, *_ in before.values())
    required = FIVE_TEXT.replace("speech?: on-screen text and speech", "speech: on-screen text and speech")
    result = change_dimensions(db_url, name, definition=required)
    assert "flags and doubt recomputed for 6 suggestion(s): 3 changed" in result["notes"]
    after = state()
    for clip, (bits, review_bits, key, score, reason) in after.items():
        no_speech = int(clip.split("_")[1]) % 2 == 1  # the world's odd clips have no speech
        assert bool(bits & empty) == no_speech and review_bits == bits, clip
        assert key == -score and score - before[clip][3] == (100 * FLAG_POINTS["empty_dimension"] if no_speech else 0)
        assert ("speech" in reason) == no_speech, (clip, reason)
    odd = {ids[c] for c in after if int(c.split("_")[1]) % 2}
    by_doubt = [ids[c] for c in sorted(after, key=lambda c: after[c][2])]
    assert queue_order(db_url, ReviewFilter(dataset=name, status="all")) == by_doubt != \
        [ids[c] for c in sorted(before, key=lambda c: before[c][2])]  # the queue is in the new doubt order
    assert set(queue_order(db_url, ReviewFilter(dataset=name, status="all", flag="empty_dimension"))) == odd
    back = change_dimensions(db_url, name, definition=FIVE_TEXT)
    assert "flags and doubt recomputed for 6 suggestion(s): 3 changed" in back["notes"]
    assert state() == before


def test_a_save_from_a_page_showing_other_dimensions_is_refused(db_url, mod5):
    """A page opened before a rename sends the old names: nothing is saved, and it says why and what to do."""
    name, ids = mod5
    item = responses.load(db_url, ids["clip_1"], "dee")  # the dataset asks for 2 reviews: dee's own response
    change_dimensions(db_url, name, renames={"speech": "on_screen"})
    with pytest.raises(ConfigError, match=r"the page sent the dimensions .*speech.*but dataset mod5 has .*on_screen"):
        responses.save(db_url, ids["clip_1"], expected_version=0, reviewer="dee", action="edit",
                       fields={**item.fields, "speech": "typed before the rename"}, label="offensive")
    assert responses.own_response(db_url, item.video_id, "dee") is None  # nothing was saved
    with session_scope(db_url) as s:
        assert queries.dimension_names(s, queries.get_dataset(s, name).id)[-1] == "on_screen"


def test_a_rename_waits_for_a_save_in_flight_and_moves_its_text_too(db_url, mod5):
    """A save that read the old names and has not committed yet is not lost under a name that no longer exists:
    the rename waits for it (PostgreSQL: the dataset's row lock; SQLite: the write lock) and then moves its text."""
    import threading
    import time

    from db.engine import session_factory

    name, ids = mod5
    saving = session_factory(db_url)()
    try:
        queries.save_review(saving, ids["clip_3"], expected_version=1, reviewer="ann", speech="said in flight")
        result: dict = {}
        rename = threading.Thread(target=lambda: result.update(
            done=change_dimensions(db_url, name, renames={"speech": "voice"})))
        rename.start()
        time.sleep(1.5)
        assert rename.is_alive() and not result  # waiting for the save's transaction
        saving.commit()
    finally:
        saving.close()
    rename.join(timeout=60)
    assert result["done"]["dimensions"][-1]["name"] == "voice"
    item = review.load_item(db_url, ids["clip_3"])
    assert item.stored["voice"] == "said in flight" and "speech" not in item.stored


def test_rbft_import_takes_the_dimensions_as_text(db_url, tmp_path, data_dir, capsys):
    from tests.helpers import make_video

    for i, label in enumerate(LABELS):
        make_video(tmp_path / "src" / label / f"v{i}.mp4", num_frames=4, color_seed=i)
    common = [str(tmp_path / "src"), "--preset", "moderation", "--labels", ",".join(LABELS), "--db", db_url]
    assert main(["import", "mhc5", *common, "--dimensions", FIVE_TEXT.replace("\n", "; ")]) == 0
    assert show_dimensions(db_url, "mhc5")["text"] == FIVE_TEXT.replace("\n", "; ")
    capsys.readouterr()
    assert main(["import", "none", *common, "--dimensions", " ; "]) == 2  # a preset without dimensions
    assert "error: `dimensions` defines no rationale dimensions; give at least one" in capsys.readouterr().err
    with session_scope(db_url) as s:
        assert queries.find_dataset(s, "none") is None  # refused before anything was made

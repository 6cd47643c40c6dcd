"""Datasets tab handlers through gradio_client: create, import as a job with its report, bad uploads, generation."""

from __future__ import annotations

import time

import pytest

from tests.helpers import make_still_png_as_mp4, make_text_as_mp4, make_video
from tests.review_world import free_port


@pytest.fixture
def client(tmp_path, db_url, data_dir):
    from gradio_client import Client

    from ui.app import build_app, page_assets

    demo = build_app(db_url)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **page_assets())
    yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    demo.close()


def _wait_job(client, selected: str, timeout_s: float = 90.0):
    """Poll like the page's timer does until the job has ended; returns (progress html, *details)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = client.predict(selected, api_name="/datasets_poll")  # timer, progress, table, selected, details
        if any(word in out[1] for word in ("succeeded", "failed", "cancelled", "interrupted")):
            return (out[1], *out[4:])
        time.sleep(0.5)
    raise AssertionError(f"job did not finish in {timeout_s} s: {out[1]}")


def test_create_import_report_and_counts(client, tmp_path):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="needs at least two labels"):
        client.predict("doors", "custom", "Door Inspector", "Is the door ok?", "ok", "", api_name="/datasets_create")
    table, selected = client.predict("doors", "custom", "Door Inspector", "Is the door ok?", "ok, broken",
                                     "Broken: the door hangs or is open.", api_name="/datasets_create")
    assert table["data"][0][:3] == ["doors", "custom", "ok, broken"]

    src = tmp_path / "src"
    make_video(src / "ok" / "a.mp4", color_seed=1)
    make_video(src / "broken" / "b.mp4", color_seed=2)
    make_text_as_mp4(src / "ok" / "notes.mp4")  # a non-video file named like one
    progress = client.predict("doors", str(src), None, "auto", 1, api_name="/datasets_import")[-1]
    assert "import job" in progress
    out = _wait_job(client, "doors")
    assert "succeeded" in out[0]
    per_label, per_status, summary, failed, _page = out[1:]
    assert "2 imported, 0 unchanged, 1 failed" in summary
    assert failed["data"][0][0].endswith("notes.mp4") and failed["data"][0][1]
    # counts include the unreadable file (kept as a row with its reason; never reviewed or trained on)
    assert {row[0]: row[-1] for row in per_label["value"]["data"]} == {"broken": 1, "ok": 2}
    assert ["none", 3] in per_status["data"]  # no rationale generated yet


def test_uploads_that_are_not_manifests_are_refused(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    client.predict("homes", "smart-home", "", "", "", "", api_name="/datasets_create")
    src = tmp_path / "src"
    make_video(src / "normal" / "a.mp4")
    picture = make_still_png_as_mp4(tmp_path / "picture.csv")  # a PNG named like a CSV
    with pytest.raises(AppError, match="not a text manifest"):
        client.predict("homes", str(src), handle_file(str(picture)), "auto", 0, api_name="/datasets_import")
    video = make_video(tmp_path / "clip.mp4")
    with pytest.raises(AppError, match="Invalid file type"):  # the upload field accepts manifests only
        client.predict("homes", str(src), handle_file(str(video)), "auto", 0, api_name="/datasets_import")
    with pytest.raises(AppError, match="does not exist on the server"):
        client.predict("homes", str(tmp_path / "nowhere"), None, "auto", 0, api_name="/datasets_import")


def test_generation_job_reports_failure(client, tmp_path, db_url):
    from gradio_client.exceptions import AppError

    from rbft_core.data.importer import import_videos

    client.predict("homes", "smart-home", "", "", "", "", api_name="/datasets_create")
    make_video(tmp_path / "src" / "normal" / "a.mp4")
    make_video(tmp_path / "src" / "abnormal" / "b.mp4", color_seed=1)
    import_videos(db_url, "homes", tmp_path / "src", test_fraction=0.0)  # videos to describe: the model must load
    with pytest.raises(AppError, match="model is empty"):
        client.predict("homes", "", 8, 4, "train", True, 1, api_name="/datasets_generate")
    started = client.predict("homes", "/no/such/model", 8, 4, "train", True, 1, api_name="/datasets_generate")
    assert "generation job" in started[-1]
    out = _wait_job(client, "homes")
    # the job fails, and the page says so and why (the missing model folder), never "succeeded"
    assert "generate of homes" in out[0] and "failed" in out[0] and "succeeded" not in out[0]
    assert "/no/such/model" in out[0] and "does not exist" in out[0]


def test_every_failed_file_is_counted_and_paged(client, tmp_path):
    """An import with more failures than a page: the summary counts them all (not the capped list the job row
    keeps), and the pager walks through every one of them, a page at a time."""
    client.predict("homes", "smart-home", "", "", "", "", api_name="/datasets_create")
    src = tmp_path / "src"
    make_video(src / "normal" / "a.mp4")
    for i in range(230):
        (src / "normal" / f"broken-{i:03d}.mp4").write_text(f"not a video {i}")
    client.predict("homes", str(src), None, "auto", 1, api_name="/datasets_import")
    out = _wait_job(client, "homes", timeout_s=180)
    assert "succeeded" in out[0]
    summary, first, page = out[3], out[4], out[5]
    assert "1 imported, 0 unchanged, 230 failed" in summary
    assert len(first["data"]) == 100 and page["value"] == 1 and "page 1 of 3 (230 in all)" in page["label"]
    seen = {row[0] for row in first["data"]}
    for wanted, rows in ((2, 100), (3, 30)):
        failed, page = client.predict("homes", wanted, api_name="/datasets_failed_page")
        assert page["value"] == wanted and len(failed["data"]) == rows
        seen |= {row[0] for row in failed["data"]}
    assert len(seen) == 230 and all("broken-" in path for path in seen)
    assert all(row[1] for row in failed["data"])  # each with its reason
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="99 is greater than maximum value 3"):  # past the end: refused, named
        client.predict("homes", 99, api_name="/datasets_failed_page")

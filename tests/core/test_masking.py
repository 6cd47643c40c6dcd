"""Masking: regions and their bad input, random controls, fills, metrics, the experiment and its job."""

import json
import time

import numpy as np
import pytest

from rbft_core.inspection import regions as rg
from rbft_core.errors import ConfigError, DataError
from rbft_core.specs.inspection import MaskSpec
from rbft_core.inspection.masking import model_metrics, run_experiment
from rbft_core.data.video import SampledVideo


def _video(t=4, size=(112, 84), duration=2.0) -> SampledVideo:
    frames = np.full((t, size[1], size[0], 3), 100, np.uint8)
    return SampledVideo(frames=frames, timestamps_s=[i * duration / t for i in range(t)],
                        frame_indices=list(range(0, 2 * t, 2)), source_fps=2 * t / duration, duration_s=duration,
                        source_size=size, total_num_frames=2 * t)


def test_box_outside_the_frame_is_clipped_with_a_notice():
    box, note = rg.check_box([-10, 20, 50, 200], (112, 84))
    assert box == (0.0, 20.0, 50.0, 84.0)
    assert "clipped" in note and "outside the 112x84 frame" in note
    assert rg.check_box([1, 2, 3, 4], (112, 84)) == ((1.0, 2.0, 3.0, 4.0), None)


def test_zero_area_and_wholly_outside_boxes_are_refused():
    with pytest.raises(DataError, match="zero area"):
        rg.check_box([10, 10, 10, 40], (112, 84))
    with pytest.raises(DataError, match="wholly outside"):
        rg.check_box([200, 10, 300, 40], (112, 84))


def test_time_range_beyond_the_end_is_clipped():
    video = _video()  # frames at 0, 0.5, 1.0, 1.5 s of a 2 s clip
    regions = rg.regions_from_timed(video, [rg.TimedBox((10, 10, 30, 30), 0.9, 9.0)])
    assert [len(b) for b in regions.boxes] == [0, 0, 1, 1]
    assert any("past the video's end" in n and "clipped to 0.9-2.00 s" in n for n in regions.notices)
    with pytest.raises(DataError, match="after the video's end"):
        rg.regions_from_timed(video, [rg.TimedBox((10, 10, 30, 30), 5.0, 9.0)])


def test_random_controls_keep_size_avoid_the_region_and_stay_inside():
    video = _video()
    regions = rg.regions_from_timed(video, [rg.TimedBox((40, 20, 70, 60))])
    control = rg.random_control(regions, np.random.default_rng(0))
    for region, boxes in zip(regions.boxes, control.boxes):
        (r,), (c,) = region, boxes
        assert (c[2] - c[0], c[3] - c[1]) == pytest.approx((r[2] - r[0], r[3] - r[1]))
        assert not rg._overlaps(r, c)
        assert 0 <= c[0] and c[2] <= 112 and 0 <= c[1] and c[3] <= 84
    assert control.area() == pytest.approx(regions.area())
    aligned = rg.align_regions(regions, 28)
    assert aligned.boxes[0] == [(28, 0, 84, 84)]


def test_fills_change_only_the_box():
    video = _video()
    video.frames[:, :, :56] = 200
    regions = rg.regions_from_timed(video, [rg.TimedBox((40, 20, 70, 60))])
    for fill in ("black", "mean", "blur"):
        out = rg.apply_fill(video.frames, regions, fill)
        changed = np.any(out != video.frames, axis=-1)
        assert changed[:, 20:60, 40:70].any() and not changed[:, :20].any() and not changed[:, :, 70:].any()
    assert (rg.apply_fill(video.frames, regions, "black")[:, 20:60, 40:70] == 0).all()
    with pytest.raises(ConfigError, match="fill must be one of"):
        rg.apply_fill(video.frames, regions, "pink")


def test_motion_boxes_find_the_moving_object():
    video = _video(t=4)
    for f in range(4):
        video.frames[f, 30:50, 10 + 20 * f:30 + 20 * f] = 255
    regions = rg.motion_regions(video)
    for f, (box,) in enumerate(regions.boxes):
        assert box == pytest.approx((10 + 20 * f, 30, 30 + 20 * f, 50))


def test_box_files_json_jsonl_csv(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps({"videos": {
        "a": {"boxes": [[1, 2, 3, 4], None]}, "b": {"regions": [{"box": [1, 2, 30, 40], "t_start": 0.5}]}}}))
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "clip_1", "path": "clips/clip_1.mp4", "boxes": [[0, 0, 5, 5]]}) + "\n")
    (tmp_path / "b.csv").write_text("video,frame,x0,y0,x1,y1\nv,3,1,2,3,4\nv,3,5,6,7,8\n")
    loaded = rg.load_box_file(tmp_path / "b.json")
    assert loaded["a"] == {0: [[1, 2, 3, 4]], 1: []}
    assert loaded["b"] == [rg.TimedBox((1, 2, 30, 40), 0.5, None)]
    assert rg.load_box_file(tmp_path / "m.jsonl") == {"clip_1": {0: [[0, 0, 5, 5]]}}
    assert rg.load_box_file(tmp_path / "b.csv") == {"v": {3: [(1, 2, 3, 4), (5, 6, 7, 8)]}}
    (tmp_path / "bad.csv").write_text("name,x\n")
    with pytest.raises(DataError, match="needs columns"):
        rg.load_box_file(tmp_path / "bad.csv")
    regions = rg.regions_from_frame_boxes(_video(), {0: [[1, 2, 3, 4]], 6: [[10, 10, 20, 20]]})
    assert regions.boxes == [[(1, 2, 3, 4)], [(1, 2, 3, 4)], [(10, 10, 20, 20)], [(10, 10, 20, 20)]]


def _row(orig, crit, rand, lp=(0.0, -1.0, -0.2)):
    cond = lambda ok, l: {"correct": ok, "pred": "a" if ok else "b", "logp_true": l}  # noqa: E731
    return {"original": cond(orig, lp[0]), "critical": cond(crit, lp[1]), "random": [cond(r, lp[2]) for r in rand]}


def _simulated(rng, n, p_orig=0.9, p_crit=0.5, p_rand=0.7):
    """n videos drawn from a population whose drop ratio is (0.9 - 0.5) / (0.9 - 0.7) = 2."""
    return [_row(bool(rng.random() < p_orig), bool(rng.random() < p_crit), [bool(rng.random() < p_rand)])
            for _ in range(n)]


def test_bootstrap_interval_covers_the_true_ratio_at_about_95_percent_and_narrows_with_data():
    """What a 95 % interval claims, checked by simulation: over many experiments drawn from a population with a
    known drop ratio (2.0), the interval holds it about 95 % of the time, and four times the videos make it
    at most about half as wide."""
    import numpy as np

    rng = np.random.default_rng(7)
    covered, widths = [], {60: [], 240: []}
    for i in range(200):
        for n in (60, 240):
            ci = model_metrics(_simulated(rng, n), bootstrap=400, seed=i)["drop_ratio_ci"]
            if ci is None:
                continue
            widths[n].append(ci[1] - ci[0])
            if n == 60:
                covered.append(ci[0] <= 2.0 <= ci[1])
    assert len(covered) >= 180
    coverage = float(np.mean(covered))
    assert 0.85 <= coverage <= 0.99, coverage  # neither too narrow nor trivially wide
    assert 0.15 < np.median(widths[240]) / np.median(widths[60]) < 0.7  # ~1/2 or less: the ratio is heavy-tailed at n=60


def test_metrics_drop_ratio_and_bootstrap_interval():
    rows = [_row(True, False, [True, False])] * 4 + [_row(True, True, [True, True])] * 4 + [_row(False, False, [False, False])] * 2
    m = model_metrics(rows, bootstrap=500, seed=1)
    assert m["accuracy_original"] == pytest.approx(0.8) and m["accuracy_critical"] == pytest.approx(0.4)
    assert m["accuracy_random"] == pytest.approx(0.6)
    assert m["drop_critical"] == pytest.approx(0.4) and m["drop_random"] == pytest.approx(0.2)
    assert m["drop_ratio"] == pytest.approx(2.0)
    assert m["flip_rate_critical"] == pytest.approx(0.4) and m["flip_rate_random"] == pytest.approx(0.2)
    assert m["delta_logp_true_critical"] == pytest.approx(-1.0)
    lo, hi = m["drop_ratio_ci"]
    assert lo < 2.0 < hi and m["drop_ratio_ci_defined"] > 0.9
    assert model_metrics(rows, bootstrap=500, seed=1)["drop_ratio_ci"] == [lo, hi]  # seeded: reproducible
    no_random_drop = model_metrics([_row(True, False, [True])] * 3, bootstrap=100)
    assert no_random_drop["drop_ratio"] is None and no_random_drop["drop_ratio_ci"] is None
    with pytest.raises(DataError, match="no videos with a region"):
        model_metrics([])
    with pytest.raises(ConfigError, match="k_random"):
        MaskSpec(k_random=0)


@pytest.fixture
def two_runs(world_dataset, tiny_model_dir):
    """A zero-shot run and a direct-SFT run (two steps) of the tiny model on the demo-world dataset."""
    from rbft_core.specs.training import EvaluateSpec
    from rbft_core.training.evaluate import evaluate_run
    from rbft_core.specs.training import TrainSpec
    from rbft_core.training.train import train_stage

    name, url = world_dataset
    zero = evaluate_run(url, name, model=str(tiny_model_dir), cfg=EvaluateSpec(num_frames=4, max_pixels=3136,
                                                                             generate_answer=False))
    sft = train_stage(url, TrainSpec(dataset=name, stage=2, model=str(tiny_model_dir), max_steps=2, batch_size=2,
                                       lora_rank=4, num_frames=4, max_pixels=3136, lr=5e-3))
    evaluate_run(url, name, run_id=sft.run_id, cfg=EvaluateSpec(num_frames=4, max_pixels=3136, generate_answer=False))
    return name, url, zero, sft.run_id


def test_experiment_uses_the_evaluation_path_and_writes_reports(two_runs, data_dir):
    from sqlalchemy import select

    from db.engine import session_scope
    from db.models import Prediction

    name, url, zero, sft_id = two_runs
    cfg = MaskSpec(runs=(zero.run_id, sft_id), regions_source="meta", fill="mean", k_random=2, bootstrap=200)
    seen = []
    result = run_experiment(url, name, cfg, progress=lambda d, t, n: seen.append((d, t)))
    assert [m["kind"] for m in result.models] == ["zero_shot", "direct_sft"]
    # no sampling was given: each run is scored as it was trained / evaluated (4 frames at 3,136 px)
    assert all(m["sampling"]["num_frames"] == 4 and m["sampling"]["max_pixels"] == 3136 and not m["sampling_override"]
               for m in result.models)
    assert seen[-1][0] == seen[-1][1] == 2 * zero.metrics["n"]
    # the unmasked condition is exactly what evaluation predicted (same frames, processor and scoring)
    with session_scope(url) as s:
        for run_id in (zero.run_id, sft_id):
            stored = {p.video_id: p.probs for p in s.scalars(select(Prediction).where(Prediction.run_id == run_id))}
            for v in (v for v in result.videos if v["run_id"] == run_id):
                for label, p in v["original"]["probs"].items():
                    assert p == pytest.approx(stored[v["video_id"]][label], abs=1e-6)
    for v in result.videos:
        assert len(v["random"]) == 2 and 0 < v["masked_share"] < 1
    for key in ("json", "csv", "png"):
        assert (data_dir / "reports").as_posix() in result.files[key]
    report = json.loads(open(result.files["json"]).read())
    assert report["models"][1]["run_id"] == sft_id
    assert open(result.files["csv"]).readline().startswith("name,run_id,n,accuracy_original")


def test_experiment_runs_as_a_job_with_progress(two_runs, data_dir):
    from rbft_core.tabs.inspect import start_experiment
    from rbft_core.jobs.runner import job_status
    from rbft_core.inspection.mask_reports import latest_experiment

    name, url, zero, _ = two_runs
    job_id = start_experiment(url, name, [zero.run_id], regions_source="motion", fill="black", k_random=1,
                              num_frames=4, max_pixels=3136)
    deadline = time.monotonic() + 240
    while job_status(url, job_id)["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(1)
    status = job_status(url, job_id)
    assert status["status"] == "succeeded", status
    assert status["progress"] == pytest.approx(1.0)
    latest = latest_experiment(name)
    assert latest["config"]["regions_source"] == "motion" and latest["models"][0]["run_id"] == zero.run_id
    with pytest.raises(DataError, match="no boxes drawn"):
        start_experiment(url, name, [zero.run_id], regions_source="drawn")

"""A model's sampling comes from its folder (the demo build's file, an export's rbft_export.json, the processor's
video defaults), a hub id's cached processor, or the built-in default; a value the user gives always wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from db import job_queries, queries
from db.engine import session_scope
from rbft_core.cli.main import build_parser
from rbft_core.cli.tasks import pipeline_spec_from_args
from rbft_core.errors import ConfigError
from rbft_core.models.model_sampling import (
    BUILT_IN,
    fill_sampling,
    model_sampling,
    sampling_plan,
    write_model_sampling,
)
from rbft_core.specs.sampling import Sampling


def _folder(tmp_path: Path, name: str, **files: dict) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    for file_name, content in files.items():
        (folder / file_name.replace("__", ".")).write_text(json.dumps(content))
    return folder


def test_demo_build_writes_the_models_sampling_into_its_folder(tmp_path):
    from rbft_core.demo.prepare import DemoConfig, build_demo

    cfg = DemoConfig.fast()
    model_dir = tmp_path / "demo" / "base-model-fast"  # a model built before folders carried their sampling
    model_dir.mkdir(parents=True)
    (model_dir / "config.json").write_text("{}")
    (model_dir / "build.json").write_text(json.dumps({"key": cfg.cache_key(), "build_seconds": 0.0, "caption": {}}))
    build = build_demo(cfg, root=tmp_path / "demo")
    assert build.reused and build.model_dir == model_dir
    found = model_sampling(str(model_dir))
    assert found.sampling.num_frames == cfg.sample_frames == 4
    assert found.source.startswith("from ") and found.source.endswith("base-model-fast/rbft_sampling.json")
    assert "num_frames" in found.fields and "4 frames" in found.note()


def test_exported_adapter_carries_the_runs_sampling(db_url, tmp_path):
    from rbft_core.export.model import export_model

    run_dir = tmp_path / "runs" / "s1"
    (run_dir / "adapter").mkdir(parents=True)
    (run_dir / "adapter" / "adapter_config.json").write_text("{}")
    config = {"task": "train", "num_frames": 6, "fps": 0.0, "max_frames": 32, "max_pixels": 3136}
    with session_scope(db_url) as s:
        ds = queries.get_or_create_dataset(s, "homes", labels=["normal", "abnormal"])
        job_queries.upsert_run(s, "s1", kind="stage1", stage=1, run_dir=str(run_dir), dataset_id=ds.id,
                               base_model="base", status="succeeded", config=config)
    out = tmp_path / "exported"
    export_model(db_url, "s1", out)
    found = model_sampling(str(out))
    assert found.sampling == Sampling(num_frames=6, max_pixels=3136)
    assert found.source.endswith("exported/rbft_export.json (run s1)")


def test_training_adapter_file_is_read_before_the_processor(tmp_path):
    folder = _folder(tmp_path, "adapter", processor_config__json={"video_processor": {"size": {"longest_edge": 50176}}})
    write_model_sampling(folder, Sampling(num_frames=3, max_pixels=6272))
    found = model_sampling(str(folder))
    assert found.sampling == Sampling(num_frames=3, max_pixels=6272)
    assert found.source.endswith("adapter/rbft_sampling.json")


def test_folder_without_a_file_falls_back_to_the_processor_defaults(tiny_model_dir, tmp_path):
    found = model_sampling(str(tiny_model_dir))  # transformers writes processor_config.json with a video_processor
    assert found.fields == ("max_pixels",) and found.sampling.max_pixels == 64 * 28 * 28
    assert found.sampling.num_frames == Sampling().num_frames  # the processor names no frame count
    assert found.source.startswith("from the processor defaults (") and "processor_config.json" in found.source
    assert "frames built-in default" in found.note()
    sampler = _folder(tmp_path, "sampler", video_preprocessor_config__json={
        "do_sample_frames": True, "fps": 2.0, "max_frames": 768, "max_pixels": 602112})
    found = model_sampling(str(sampler))
    assert found.sampling == Sampling(fps=2.0, max_frames=256, max_pixels=602112)  # capped at the server's bound
    assert found.source.endswith("sampler/video_preprocessor_config.json)")
    qwen3 = _folder(tmp_path, "qwen3", video_preprocessor_config__json={  # Qwen3-VL budgets the whole clip
        "video_processor_type": "Qwen3VLVideoProcessor", "do_sample_frames": True, "fps": 2, "max_frames": 768,
        "size": {"longest_edge": 25165824, "shortest_edge": 4096}})
    assert model_sampling(str(qwen3)).sampling == Sampling(fps=2.0, max_frames=256, max_pixels=25165824 // 256)


def test_hub_id_reads_its_processor_from_the_local_cache_only(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub

    repo = tmp_path / "hub" / "models--acme--vl-7b"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (snapshot / "video_preprocessor_config.json").write_text(json.dumps({"size": {"longest_edge": 200704}}))
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    found = model_sampling("acme/vl-7b")
    assert found.sampling.max_pixels == 200704 and found.fields == ("max_pixels",)
    assert found.source == "from the processor defaults (acme/vl-7b: video_preprocessor_config.json)"
    not_cached = model_sampling("acme/other-model")
    assert not_cached.sampling == Sampling() and not_cached.source == BUILT_IN


def test_missing_folder_and_empty_model_fall_back_to_the_built_in_default(tmp_path):
    for model in (str(tmp_path / "nowhere" / "model"), "", None):
        found = model_sampling(model)
        assert found.sampling == Sampling() and found.source == BUILT_IN and found.fields == ()
    bare = _folder(tmp_path, "bare")  # a folder with nothing about video
    assert model_sampling(str(bare)).source == BUILT_IN


def test_explicit_values_win_over_the_model_folder(tmp_path):
    folder = _folder(tmp_path, "m")
    write_model_sampling(folder, Sampling(num_frames=4, max_pixels=12544))
    filled, found = fill_sampling({"num_frames": 6, "max_pixels": None}, str(folder))
    assert filled == {"num_frames": 6, "max_pixels": 12544, "fps": 0.0, "max_frames": 32}
    assert sampling_plan(filled, {"num_frames": 6}, found).startswith("6 frames at 12,544 px (frames given; "
                                                                     "max pixels from ")
    fps_model = _folder(tmp_path, "fps")
    write_model_sampling(fps_model, Sampling(fps=2.0, max_frames=16))
    filled, _ = fill_sampling({"num_frames": 5}, str(fps_model))
    assert filled["fps"] == 0.0 and filled["num_frames"] == 5  # a frame count given is not turned into fps
    args = build_parser().parse_args(["pipeline", "ds", "--model", str(folder), "--s1-frames", "6"])
    spec = pipeline_spec_from_args(args)
    assert (spec.stage1.num_frames, spec.stage2.num_frames) == (6, 4)
    assert spec.stage1.max_pixels == spec.stage2.max_pixels == 12544
    args = build_parser().parse_args(["train", "ds", "--model", str(folder), "--max-pixels", "3136"])
    from rbft_core.cli.tasks import with_model_sampling
    from rbft_core.specs.flags import spec_values
    from rbft_core.specs.training import TrainSpec

    values = with_model_sampling({"dataset": "ds", **spec_values(args, TrainSpec)})
    assert (values["num_frames"], values["max_pixels"]) == (4, 3136)


def test_cli_prints_the_resolved_sampling_and_its_source(tmp_path, capsys):
    from rbft_core.cli.tasks import with_model_sampling

    folder = _folder(tmp_path, "m")
    write_model_sampling(folder, Sampling(num_frames=4, max_pixels=12544))
    with_model_sampling({"model": str(folder), "num_frames": None}, ("num_frames", "max_pixels"))
    out = capsys.readouterr().out
    assert out.startswith("sampling: 4 frames at 12,544 px (frames, max pixels from ")
    assert "m/rbft_sampling.json" in out
    with_model_sampling({"model": str(folder), "num_frames": 6}, ("num_frames", "max_pixels"), json_output=True)
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.startswith("sampling: 6 frames at 12,544 px (frames given; max pixels")


def test_cli_help_says_sampling_defaults_come_from_the_model_folder(capsys):
    for command, flag in (("train", "--frames"), ("pipeline", "--s2-max-pixels"), ("generate", "--max-pixels")):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        after = text[text.rindex(flag + " "):]  # the option's own line, after the usage summary
        assert "(default: from the model folder, else" in after[:200], (command, after[:200])


def test_a_bad_sampling_file_is_refused_with_the_file_named(tmp_path):
    folder = _folder(tmp_path, "bad", rbft_sampling__json={"num_frames": 0})
    with pytest.raises(ConfigError, match=r"bad/rbft_sampling\.json: `num_frames` must be >= 1.*fix or delete"):
        model_sampling(str(folder))
    (folder / "rbft_sampling.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"rbft_sampling\.json is not readable JSON"):
        model_sampling(str(folder))


def test_training_writes_the_runs_sampling_into_its_adapter(world_dataset, tiny_model_dir):
    from rbft_core.specs.training import TrainSpec
    from rbft_core.training.train import train_stage

    name, url = world_dataset
    cfg = TrainSpec(dataset=name, stage=2, model=str(tiny_model_dir), num_frames=3, max_pixels=3136, max_steps=1,
                    batch_size=2, lora_rank=4, lora_alpha=8)
    result = train_stage(url, cfg)
    found = model_sampling(str(result.run_dir / "adapter"))
    assert found.sampling == Sampling(num_frames=3, max_pixels=3136) == cfg.sampling
    assert found.source.endswith("adapter/rbft_sampling.json")

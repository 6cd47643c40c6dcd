"""The demo world: determinism, domain rules, boxes, the stratified split, the manifest and its cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rbft_core.demo import ClipSpec, DemoConfig, WorldSpec, background, render_clip, render_world, rule_for
from rbft_core.demo.render import world_specs
from rbft_core.demo.world import stratified_split
from rbft_core.errors import ConfigError


def test_same_seed_gives_the_same_world_and_another_seed_does_not():
    a, b = world_specs(WorldSpec(num_clips=40, seed=3)), world_specs(WorldSpec(num_clips=40, seed=3))
    c = world_specs(WorldSpec(num_clips=40, seed=4))
    assert [(s.scene_graph(), s.label, s.reason) for s in a] == [(s.scene_graph(), s.label, s.reason) for s in b]
    assert [s.scene_graph() for s in a] != [s.scene_graph() for s in c]
    assert np.array_equal(render_clip(a[5], num_frames=8, size=(112, 84)), render_clip(b[5], num_frames=8, size=(112, 84)))
    assert stratified_split(a, 3, 0.25) == stratified_split(b, 3, 0.25)
    assert sum(s.label == "abnormal" for s in a) == 20  # balanced


@pytest.mark.parametrize("scene, night, subject, action, companion, label, category", [
    ("porch", True, "raccoon", "walking by", "", "abnormal", "wildlife"),
    ("porch", False, "deer", "walking by", "", "normal", "wildlife"),
    ("driveway", False, "bear", "running", "", "abnormal", "wildlife"),
    ("living room", False, "raccoon", "climbing", "", "abnormal", "wildlife"),
    ("backyard", False, "child", "running", "", "abnormal", "child safety"),
    ("backyard", False, "child", "running", "a parent", "normal", "everyday"),
    ("porch", False, "person", "picking up a package", "", "abnormal", "security"),
    ("driveway", True, "person", "entering", "", "abnormal", "security"),
    ("driveway", False, "person", "entering", "", "normal", "everyday"),
    ("porch", True, "courier", "leaving a package", "", "normal", "deliveries"),
    ("backyard", True, "dog", "running", "", "normal", "pets"),
])
def test_labels_follow_the_domain_rules(scene, night, subject, action, companion, label, category):
    spec = ClipSpec("c", scene, night, subject, action, "medium", companion=companion,
                    clothing="a red jacket" if subject in {"person", "child"} else "")
    rule = rule_for(spec)
    assert (rule.label, rule.category) == (label, category), rule.reason


@pytest.mark.parametrize("subject, action, night", [
    ("person", "walking by", False), ("bear", "climbing", True), ("cat", "lying still", False),
    ("deer", "approaching the door", False), ("courier", "walking by", True), ("child", "running", False),
])
def test_boxes_lie_inside_the_frame_and_cover_the_sprite(subject, action, night):
    spec = ClipSpec("c", "driveway", night, subject, action, "large", seed=1,
                    clothing={"person": "a blue hoodie", "child": "a red jacket", "courier": "a brown uniform"}.get(subject, ""))
    w, h = 168, 112
    frames = render_clip(spec, num_frames=8, size=(w, h), noise=False).astype(np.int16)
    empty = background("driveway", w, h)
    if night:
        empty = empty * np.array([0.3, 0.32, 0.42], np.float32)
    empty = np.clip(empty, 0, 255).astype(np.uint8).astype(np.int16)
    assert len(spec.boxes) == 8
    visible = 0
    for frame, box in zip(frames, spec.boxes):
        changed = np.abs(frame - empty).max(-1) > 2
        if not box:  # the subject has left the frame (running, entering)
            assert not changed.any()
            continue
        x0, y0, x1, y1 = box
        visible += 1
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        ys, xs = np.nonzero(changed)
        assert xs.min() >= int(x0) and xs.max() < x1 + 1 and ys.min() >= int(y0) and ys.max() < y1 + 1
        inside = changed[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))]
        assert inside.mean() > 0.3  # the box is tight, not the whole frame
    assert visible >= 6


def test_split_is_stratified_per_label_and_seeded():
    specs = world_specs(WorldSpec(num_clips=60, seed=0))
    split = stratified_split(specs, 0, 0.25)
    for label in ("normal", "abnormal"):
        ids = [s.clip_id for s in specs if s.label == label]
        assert sum(split[i] == "test" for i in ids) == round(len(ids) * 0.25)
    assert split != stratified_split(specs, 1, 0.25)


def test_manifest_keeps_scene_graph_rule_and_boxes_and_is_cached(tmp_path):
    world = WorldSpec(num_clips=6, num_frames=8, size=(112, 84), fps=8.0, test_fraction=0.34)
    manifest = render_world(tmp_path / "w", world)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(rows) == 6 and {r["label"] for r in rows} == {"normal", "abnormal"}
    assert sum(r["split"] == "test" for r in rows) == 2
    for row in rows:
        assert set(row["scene_graph"]) == {"subjects", "attributes", "actions", "scenes"}
        assert row["category"] and row["reason"] and len(row["boxes"]) == 8
        assert (tmp_path / "w" / row["path"]).stat().st_size > 1000
    stamp = manifest.stat().st_mtime_ns
    assert render_world(tmp_path / "w", world) == manifest and manifest.stat().st_mtime_ns == stamp


def test_a_world_drawn_by_another_renderer_is_drawn_again(tmp_path, monkeypatch):
    import rbft_core.demo.render as render

    world = WorldSpec(num_clips=2, num_frames=8, size=(112, 84), fps=8.0, test_fraction=0.5)
    manifest = render_world(tmp_path / "w", world)
    stamp = manifest.stat().st_mtime_ns
    monkeypatch.setattr(render, "renderer_key", lambda: "another sprite")
    assert render_world(tmp_path / "w", world) == manifest and manifest.stat().st_mtime_ns != stamp
    assert json.loads((tmp_path / "w" / "world.json").read_text())["renderer"] == "another sprite"


def test_demo_config_validates_and_keys_the_cache():
    with pytest.raises(ConfigError, match="multiples of 28"):
        DemoConfig(world=WorldSpec(size=(100, 84)))
    with pytest.raises(ConfigError, match="sample_frames"):
        DemoConfig(sample_frames=40)
    assert DemoConfig.fast().cache_key() != DemoConfig().cache_key()
    assert DemoConfig.fast().cache_key() == DemoConfig.fast().cache_key()

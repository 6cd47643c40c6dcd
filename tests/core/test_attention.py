"""Attention maps: token -> grid layout for all three families, rows equal to eager, logits unchanged, the lean
forward (chunked video tower, pixels freed) equal to the plain one, drawing."""

import numpy as np
import pytest
import torch

from rbft_core.inspection.attention import AttentionMap, VideoTokenLayout, _layout, attention_maps, attention_share
from rbft_core.inspection.attention_rows import capture_rows, forward_rows
from rbft_core.errors import ConfigError, ModelError
from rbft_core.models.loading import encode_prompts, load_vlm
from rbft_core.models.tiny import TinySpec, build_tiny_model
from rbft_core.data.video import SampledVideo
from rbft_core.models.video_features import encode_video_features, serve_video_features, served_pixels

FAMILIES = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"]


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request, tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp(request.param) / "m", TinySpec(family=request.param))
    return request.param, load_vlm(str(path))


def _video(frames: np.ndarray) -> SampledVideo:
    t = frames.shape[0]
    return SampledVideo(frames=frames, timestamps_s=[i * 0.5 for i in range(t)], frame_indices=list(range(0, 2 * t, 2)),
                        source_fps=4.0, duration_s=t * 0.5, source_size=(frames.shape[2], frames.shape[1]),
                        total_num_frames=2 * t)


def _planted(cell_px: int, squares: dict[int, tuple[int, int]], frames: int = 6, cells=(2, 3)) -> np.ndarray:
    """Black frames with one bright cell-sized square per listed frame: {frame: (cell row, cell col)}."""
    video = np.zeros((frames, cells[0] * cell_px, cells[1] * cell_px, 3), np.uint8)
    for f, (r, c) in squares.items():
        video[f, r * cell_px:(r + 1) * cell_px, c * cell_px:(c + 1) * cell_px] = 255
    return video


def test_bright_square_maps_to_exactly_its_token_cells(family_model):
    family, lm = family_model
    vp = lm.processor.video_processor
    cell = vp.patch_size * vp.merge_size
    # frames 2+3 share temporal cell 1; frame 4 alone lights cell 2 (temporal patches pair frames 4+5)
    # (Qwen3-VL's processor caps the pixels of the whole clip, so the clip is kept small enough not to be resized)
    frames = _planted(cell, {2: (1, 2), 3: (1, 2), 4: (0, 0)}, cells=(2, 3))
    inputs = encode_prompts(lm.processor, ["Is it normal?"], [_video(frames)])
    layout = _layout(lm, inputs)
    assert layout.grid == (3, 2, 3)
    assert len(layout.blocks) == (3 if family == "qwen3_vl" else 1)
    if family == "qwen3_vl":  # timestamps sit between the per-frame blocks
        gaps = [b[0] - a[1] for a, b in zip(layout.blocks, layout.blocks[1:])]
        assert all(g > 2 for g in gaps)
    # every video token is merge_size**2 consecutive patches of pixel_values_videos, in the processor's order
    patches = inputs["pixel_values_videos"].reshape(len(layout.positions), vp.merge_size ** 2, -1)
    brightness = layout.to_grid(patches.float().mean(dim=(1, 2)).numpy())
    lit = {tuple(int(x) for x in c) for c in np.argwhere(brightness > brightness.min() + 0.5)}
    assert lit == {(1, 1, 2), (2, 0, 0)}
    assert layout.cell_of(int(np.argmax(brightness.reshape(-1)))) in lit
    # and the cells land back on the planted pixels when spread over the frames
    amap = AttentionMap(grid=(brightness > brightness.min() + 0.5) / 2.0, frames=frames, timestamps_s=[0.0] * 6,
                        temporal_patch_size=vp.temporal_patch_size, source_size=(frames.shape[2], frames.shape[1]))
    spread = amap.frame_maps()
    assert (spread[2][frames[2, ..., 0] == 255] == 0.5).all() and spread[2].sum() == 0.5 * cell * cell


def test_custom_rows_equal_eager_rows_and_logits_are_unchanged(family_model, tmp_path):
    family, lm = family_model
    eager = load_vlm(lm.model_id, attn_implementation="eager")
    vp = lm.processor.video_processor
    frames = np.random.default_rng(1).integers(0, 256, (4, 2 * vp.patch_size * 2, 3 * vp.patch_size * 2, 3), np.uint8)
    inputs = encode_prompts(lm.processor, ["Is this video normal or abnormal?"], [_video(frames)])
    length = inputs["input_ids"].shape[1]
    rows = torch.tensor([length - 1, length - 5, 3])
    with torch.inference_mode():
        plain = lm.model(**inputs).logits
        with capture_rows(lm.model, rows, [0, 1]) as cap:
            hooked = lm.model(**inputs).logits
        reference = eager.model(**inputs, output_attentions=True)
    assert torch.equal(plain, hooked)
    for layer in (0, 1):
        expected = reference.attentions[layer][:, :, rows, :]
        assert cap.rows[layer].shape == expected.shape
        assert (cap.rows[layer] - expected).abs().max().item() < 1e-5
    # the switch is undone: the text model is back on sdpa, the vision tower never left it
    assert lm.model.config.text_config._attn_implementation == "sdpa"
    assert lm.model.config.vision_config._attn_implementation == "sdpa"


def _random_video(lm, frames: int, cells=(2, 3), seed: int = 1) -> SampledVideo:
    cell = lm.processor.video_processor.patch_size * 2
    rng = np.random.default_rng(seed)
    return _video(rng.integers(0, 256, (frames, cells[0] * cell, cells[1] * cell, 3), np.uint8))


def _flat(features) -> list:
    """pooler_output and deepstack_features of get_video_features as a flat list of tensors."""
    out = []
    for value in (features.pooler_output, getattr(features, "deepstack_features", None) or []):
        for item in value:
            out.extend(item if isinstance(item, (tuple, list)) else [item])
    return out


@pytest.mark.parametrize("groups_per_chunk", [1, 2, 3])
def test_chunked_video_encoding_equals_the_whole_batch(family_model, groups_per_chunk):
    _, lm = family_model
    # two videos of different sizes in one batch: 4 and 3 temporal groups, chunks never straddle a video
    videos = [_random_video(lm, 8, (2, 3), seed=2), _random_video(lm, 6, (3, 2), seed=3)]
    inputs = encode_prompts(lm.processor, ["Is it normal?", "And this one?"], videos)
    grids, seen = inputs["video_grid_thw"], []
    hook = lm.model.model.visual.register_forward_pre_hook(
        lambda _m, _a, kw: seen.append(kw["grid_thw"].tolist()), with_kwargs=True)
    try:
        with torch.inference_mode():
            chunked = encode_video_features(lm.model, inputs["pixel_values_videos"], grids,
                                            groups_per_chunk=groups_per_chunk)
    finally:
        hook.remove()
    t0, t1 = (int(t) for t in grids[:, 0])
    assert len(seen) == -(-t0 // groups_per_chunk) - (-t1 // groups_per_chunk)
    assert all(g[0][0] <= groups_per_chunk for g in seen)
    with torch.inference_mode():
        whole = lm.model.model.get_video_features(inputs["pixel_values_videos"], grids)
    assert chunked.last_hidden_state is None and len(chunked.pooler_output) == 2
    for a, b in zip(_flat(chunked), _flat(whole), strict=True):
        assert a.shape == b.shape and (a - b).abs().max().item() < 1e-6


def test_lean_forward_gives_the_plain_forwards_logits_and_rows(family_model):
    _, lm = family_model
    inputs = encode_prompts(lm.processor, ["Is this video normal or abnormal?"], [_random_video(lm, 8)])
    length = inputs["input_ids"].shape[1]
    rows = torch.tensor([length - 1, length - 4, 2])
    with torch.inference_mode(), capture_rows(lm.model, rows, [0, 1]) as cap:
        plain = lm.model(**inputs).logits
    pixels = inputs["pixel_values_videos"]
    with torch.inference_mode():
        features = encode_video_features(lm.model, pixels, inputs["video_grid_thw"])
        text_only = {k: v for k, v in inputs.items() if k != "pixel_values_videos"}
        with serve_video_features(lm.model, features):
            served = lm.model(**text_only, pixel_values_videos=served_pixels(pixels), use_cache=False).logits
    assert (served - plain).abs().max().item() < 1e-5
    lean_inputs = dict(inputs)
    lean = forward_rows(lm.model, lean_inputs, rows, [0, 1])
    assert "pixel_values_videos" not in lean_inputs  # taken, so the caller's copy can be freed
    for layer in (0, 1):
        assert lean[layer].shape == cap.rows[layer].shape
        assert (lean[layer] - cap.rows[layer]).abs().max().item() < 1e-5
    # nothing stays switched: the model encodes pixels again and runs sdpa
    assert "get_video_features" not in vars(lm.model.model)
    assert lm.model.config.text_config._attn_implementation == "sdpa"
    with torch.inference_mode():
        assert torch.equal(lm.model(**inputs).logits, plain)


def test_attention_maps_sum_to_one_over_the_grid(family_model):
    _, lm = family_model
    vp = lm.processor.video_processor
    frames = _planted(vp.patch_size * vp.merge_size, {0: (0, 0)}, frames=4, cells=(2, 3))
    video = _video(frames)
    amap = attention_maps(lm, video, "Is it normal?", answer="normal", layers=(-1, -1), head_agg="max")
    assert amap.grid.shape == (2, 2, 3) and amap.grid.sum() == pytest.approx(1.0)
    assert amap.layers == [1] and amap.tokens
    rel = attention_maps(lm, video, "Is it normal?", relative=True)
    assert rel.relative and rel.grid.sum() == pytest.approx(1.0) and (rel.grid >= 0).all()
    with pytest.raises(ConfigError, match="outside the model's 2 text layers"):
        attention_maps(lm, video, "x", layers=(0, 5))


def test_rationale_query_gives_one_map_per_generated_token(tiny_model_dir):
    lm = load_vlm(str(tiny_model_dir))
    frames = _planted(28, {0: (0, 0)}, frames=4, cells=(2, 2))
    amap = attention_maps(lm, _video(frames), "Describe the video.", query="rationale", max_new_tokens=6)
    assert amap.per_token is not None and amap.per_token.shape[0] == len(amap.tokens) >= 1
    assert np.allclose(amap.per_token.sum(axis=(1, 2, 3)), 1.0)


def test_flash_attention_model_is_refused_naming_the_setting(tiny_model_dir):
    lm = load_vlm(str(tiny_model_dir))
    lm.model.config.text_config._attn_implementation_internal = "flash_attention_2"
    with pytest.raises(ModelError, match="attn_implementation='sdpa'"):
        with capture_rows(lm.model, torch.tensor([0]), [0]):
            pass

    class NotHookable(torch.nn.Module):
        _supports_attention_backend = False

    with pytest.raises(ModelError, match="no text attention layers"):
        with capture_rows(NotHookable(), torch.tensor([0]), [0]):
            pass


def test_attention_share_counts_mass_inside_the_box():
    grid = np.zeros((1, 2, 2))
    grid[0, 0, 1] = 0.75
    grid[0, 1, 0] = 0.25
    amap = AttentionMap(grid=grid, frames=np.zeros((2, 56, 56, 3), np.uint8), timestamps_s=[0, 1],
                        temporal_patch_size=2, source_size=(112, 112))  # source twice the frame size
    top_right = [[56, 0, 112, 56]]
    assert attention_share(amap, [top_right, top_right]) == pytest.approx(0.75)
    assert attention_share(amap, [top_right, None]) == pytest.approx(0.375)
    assert amap.top_cells(1) == [(0, 0, 1)]


def test_layout_refuses_a_count_mismatch():
    ids = np.array([1, 9, 9, 9, 2])
    with pytest.raises(Exception, match="needs 4"):
        VideoTokenLayout.from_inputs(ids, [1, 4, 4], video_token_id=9, merge_size=2, temporal_patch_size=2,
                                     per_frame_blocks=False)


def test_overlay_png_and_heatmap_video(tmp_path):
    from rbft_core.inspection.heatmaps import overlay_frames, save_overlay_png, write_heatmap_video
    from rbft_core.data.video import probe_video

    grid = np.zeros((2, 2, 2))
    grid[0, 0, 0], grid[1, 1, 1] = 0.5, 0.5
    amap = AttentionMap(grid=grid, frames=np.full((4, 56, 56, 3), 128, np.uint8), timestamps_s=[0, 0.5, 1, 1.5],
                        temporal_patch_size=2, source_size=(56, 56))
    over = overlay_frames(amap)
    assert over.shape == (4, 56, 56, 3) and not np.array_equal(over[0, :28, :28], over[0, 28:, 28:])
    png = save_overlay_png(amap, tmp_path / "o.png", title="t", boxes=[[[0, 0, 20, 20]]] * 4)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    clip = write_heatmap_video(amap, tmp_path / "h.mp4", fps=2)
    assert probe_video(clip).num_frames == 4


def test_attention_path_imports_without_pyav_or_sqlalchemy():
    """The GPU machine has torch and transformers only: the bench and the attention path must import there."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, importlib.util\n"
        "for name in ('av', 'sqlalchemy', 'alembic', 'moviepy', 'gradio'):\n"
        "    sys.modules[name] = None\n"
        "import rbft_core.inspection.attention, rbft_core.inspection.attention_rows, rbft_core.models.video_features, rbft_core.models.loading\n"
        "import rbft_core.models.tiny, rbft_core.data.video\n"
        f"spec = importlib.util.spec_from_file_location('bench_attention', {str(root / 'bench' / 'bench_attention.py')!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]

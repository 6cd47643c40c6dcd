"""GPU check (device machine only): bf16 training on CUDA, and Stage-I step cost at the real 7B shape.

1. The tiny Qwen2.5-VL trains a few Stage-I steps through the project's own Trainer loop on CUDA in
   bf16 (the path `rbft train` takes).
2. A random-weight model with the real Qwen2.5-VL-7B configuration (no weights needed) takes Stage-I
   LoRA steps with gradient checkpointing on 16 frames: peak GPU memory and seconds per step.

Needs only torch, transformers, peft and tokenizers (videos are synthetic frames; no database).

    python bench/gpu_check.py --out results.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _Frames:
    """Stands in for rbft_core.data.video.SampledVideo (same two members the processor path reads)."""

    def __init__(self, frames: np.ndarray, fps: float = 2.0):
        self.frames = frames
        self._fps = fps

    def metadata(self) -> dict:
        n = len(self.frames)
        return {"fps": self._fps, "total_num_frames": n, "frames_indices": list(range(n)), "duration": n / self._fps}


def _collator(processor, videos):
    from rbft_core.training.sft_data import VideoSFTCollator

    class SyntheticCollator(VideoSFTCollator):
        def videos(self, examples):
            return [videos[e.video_id % len(videos)] for e in examples]

    return SyntheticCollator(processor, spec=None)


def _examples(n: int):
    from rbft_core.models.prompts import get_preset, rationale_prompt
    from rbft_core.models.rationale import render_target
    from rbft_core.training.sft_data import Example

    preset = get_preset("smart-home")
    target = render_target({"subjects": "a large dark bear", "attributes": "large, dark brown fur",
                            "actions": "climbs the porch steps and sniffs the door", "scenes": "front porch at night"},
                           preset.dimension_names)
    prompt = rationale_prompt(preset)
    return [Example(i, "", "", prompt, target, "abnormal", "model") for i in range(n)]


def tiny_bf16_training(steps: int = 8) -> dict:
    import torch

    from rbft_core.models.loading import load_vlm
    from rbft_core.models.tiny import TinySpec, build_tiny_model
    from rbft_core.specs.training import TrainSpec
    from rbft_core.training.train import wrap_lora
    from rbft_core.training.train_loop import run_trainer

    tmp = Path(tempfile.mkdtemp())
    model_dir = build_tiny_model(tmp / "tiny", TinySpec())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm = load_vlm(str(model_dir), device=device)
    cfg = TrainSpec(dataset="gpu", stage=1, model=str(model_dir), max_steps=steps, batch_size=2, lr=3e-3, device=device)
    lm.model = wrap_lora(lm.model, cfg)
    rng = np.random.default_rng(0)
    videos = [_Frames(rng.integers(0, 255, (8, 112, 112, 3), dtype=np.uint8)) for _ in range(4)]
    started = time.perf_counter()
    outcome = run_trainer(lm, cfg, _examples(16), _collator(lm.processor, videos), tmp / "run")
    losses = [r["loss"] for r in map(json.loads, (tmp / "run" / "trainer_log.jsonl").read_text().splitlines()) if r["loss"] is not None]
    return {"dtype": lm.dtype, "device": lm.device, "steps": outcome.global_step, "seconds": round(time.perf_counter() - started, 2),
            "first_loss": losses[0], "last_loss": losses[-1],
            "adapter_saved": (tmp / "run" / "adapter" / "adapter_config.json").exists()}


def qwen25_7b_stage1_step(num_frames: int = 16, steps: int = 4, height: int = 252, width: int = 448) -> dict:
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from rbft_core.models.tiny import QWEN_SPECIAL_TOKENS, TinySpec, build_processor, qwen2_5_vl_7b_config, train_tokenizer
    from rbft_core.specs.training import TrainSpec
    from rbft_core.training.train import wrap_lora

    tokenizer = train_tokenizer(["a bear on the porch at night"] * 4, 512)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    processor = build_processor(TinySpec(), tokenizer, max_pixels=height * width)
    config = qwen2_5_vl_7b_config(ids)
    config._attn_implementation = "sdpa"
    started = time.perf_counter()
    with torch.device("cuda"):
        model = Qwen2_5_VLForConditionalGeneration(config).to(torch.bfloat16)
    build_s = time.perf_counter() - started
    cfg = TrainSpec(dataset="gpu", stage=1, model="7b-shape", lora_rank=16, lora_alpha=32, gradient_checkpointing=True)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model = wrap_lora(model, cfg)
    model.train()
    rng = np.random.default_rng(0)
    video = _Frames(rng.integers(0, 255, (num_frames, height, width, 3), dtype=np.uint8))
    batch = _collator(processor, [video])(_examples(1))
    batch = {k: v.to("cuda") for k, v in batch.items()}
    batch["pixel_values_videos"] = batch["pixel_values_videos"].to(torch.bfloat16)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return {
        "num_frames": num_frames, "frame_size": [height, width], "seq_len": int(batch["input_ids"].shape[1]),
        "video_tokens": int((batch["input_ids"] == config.video_token_id).sum()),
        "params_b": round(sum(p.numel() for p in model.parameters()) / 1e9, 2),
        "trainable_m": round(sum(p.numel() for p in params) / 1e6, 2),
        "build_s": round(build_s, 1), "first_step_s": round(times[0], 3),
        "step_s_median": round(float(np.median(times[1:])), 3),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "loss": float(loss),
    }


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="gpu_check.json")
    args = parser.parse_args()
    result = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    import transformers, peft

    result["transformers"], result["peft"] = transformers.__version__, peft.__version__
    for name, fn in (("tiny_bf16_training", tiny_bf16_training), ("qwen25_7b_stage1_step", qwen25_7b_stage1_step)):
        try:
            result[name] = fn()
        except Exception as exc:  # report and go on: one failure must not hide the other figure
            import traceback

            traceback.print_exc()
            result[name] = {"error": f"{exc.__class__.__name__}: {exc}"}
        print(name, json.dumps(result[name]), flush=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

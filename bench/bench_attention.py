"""Peak memory and time of one attention map at ~4,096 video tokens: the project's method vs eager attention.

Each measurement runs in its own fresh subprocess (so one variant's peak cannot hide another's):

- ``eager``: the model loaded with eager attention, ``output_attentions=True``, one forward (every layer's
  [H, L, L]); the issue's baseline for memory;
- ``sdpa``: a plain sdpa forward of the same inputs (no weights): the time floor;
- ``rows``: the project's method, ``attention_rows.forward_rows`` (the path ``attention_maps`` takes): the
  query row on every layer, the vision tower one temporal group at a time, pixel values freed before the
  language model, no KV cache;
- ``stages``: where the memory goes (vision tower whole vs chunked, language-model pass with and without
  the KV cache), each stage measured on its own.

Memory: on CPU the peak RSS of the call (VmHWM, reset through /proc/self/clear_refs right before it) minus
the RSS just before it, with glibc's mmap threshold fixed (``MALLOC_MMAP_THRESHOLD_``) so freed tensors
go back to the OS and RSS follows live memory; on CUDA ``torch.cuda.max_memory_allocated`` over
``memory_allocated`` before the call. Every variant starts from the same state (model loaded, inputs
encoded) and the first call is the memory one (no warm-up before it). Time: median of ``--repeats`` calls
after it. Goals: rows <= 1/20 of eager's memory and <= 1.5x the sdpa time.

    python bench/bench_attention.py [--device cpu|cuda] [--shape tiny|7b] [--repeats 3]

``--shape 7b`` builds a random-weight model with Qwen2.5-VL-7B's configuration in memory (no download; use
it with ``--device cuda``: bf16 weights are 16.6 GB). Needs only torch, transformers and tokenizers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = ("sdpa", "rows", "eager")
PROMPT = "Is this video normal or abnormal? Answer with one word."
MALLOC_MMAP_THRESHOLD = str(1 << 20)  # tensors >= 1 MiB are mmapped, so freeing them lowers RSS at once


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


class Meter:
    """Peak memory over the state at ``start()``: CUDA allocator stats, or VmHWM after a clear_refs reset."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.base = 0.0

    def start(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated() / 2**20
        else:
            self.base = _status_mb("VmRSS")
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # resets VmHWM (the peak RSS) to the current RSS

    def peak_mb(self) -> float:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 2**20 - self.base
        return _status_mb("VmHWM") - self.base


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _qwen25_7b(attn: str, device: str):
    """A random-weight model with Qwen2.5-VL-7B's configuration and a processor with the same patch grid."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from rbft_core.models.loading import LoadedModel
    from rbft_core.models.tiny import QWEN_SPECIAL_TOKENS, TinySpec, build_processor, qwen2_5_vl_7b_config, train_tokenizer

    tokenizer = train_tokenizer([PROMPT] * 4, 512)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    config = qwen2_5_vl_7b_config(ids)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation=attn)
    processor = build_processor(TinySpec(), tokenizer)
    return LoadedModel(model=model.eval(), processor=processor, model_id="qwen2.5-vl-7b-shape", device=device,
                       dtype=str(dtype).removeprefix("torch."), model_type="qwen2_5_vl")


def _load(args, attn: str):
    import torch

    from rbft_core.models.loading import load_vlm

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    if args.shape == "7b":
        return _qwen25_7b(attn, args.device)
    return load_vlm(args.model_dir, attn_implementation=attn, device=args.device,
                    dtype="bfloat16" if args.device.startswith("cuda") else "float32")


def _inputs(lm, frames: int, height: int, width: int):
    """Encoded inputs for one random video of ``frames`` frames at height x width (kept at that size)."""
    import numpy as np

    from rbft_core.models.loading import encode_prompts
    from rbft_core.data.video import SampledVideo

    vp = lm.processor.video_processor
    vp.size = {"shortest_edge": 4 * 28 * 28, "longest_edge": height * width}  # keep the frames as given
    pixels = np.random.default_rng(0).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
    video = SampledVideo(frames=pixels, timestamps_s=[i * 0.5 for i in range(frames)], frame_indices=list(range(frames)),
                         source_fps=2.0, duration_s=frames / 2, source_size=(width, height), total_num_frames=frames)
    inputs = dict(encode_prompts(lm.processor, [PROMPT], [video]).to(lm.device))
    inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(lm.model.dtype)
    return inputs


def _forward(variant: str, lm, inputs: dict, layers: list[int], groups_per_chunk: int):
    """One attention map's forward; returns the last token's row on every layer, [layers, H, L] (None for sdpa)."""
    import torch

    from rbft_core.inspection.attention_rows import forward_rows

    last = int(inputs["input_ids"].shape[1]) - 1
    if variant == "rows":
        rows = forward_rows(lm.model, inputs, torch.tensor([last]), layers, groups_per_chunk=groups_per_chunk)
        return torch.stack([rows[i][0, :, 0, :] for i in layers])
    with torch.inference_mode():
        if variant == "eager":
            out = lm.model(**inputs, output_attentions=True, logits_to_keep=1)
            return torch.stack([a[0, :, last, :] for a in out.attentions])
        lm.model(**inputs, logits_to_keep=1)
    return None


def measure_variant(args) -> dict:
    import numpy as np
    import torch

    from rbft_core.inspection.attention_rows import text_attention_layers

    lm = _load(args, "eager" if args.measure == "eager" else "sdpa")
    layers = [m.layer_idx for m in text_attention_layers(lm.model)]
    meter = Meter(args.device)
    inputs = _inputs(lm, args.frames, args.height, args.width)
    video_tokens = int((inputs["input_ids"] == lm.model.config.video_token_id).sum())
    length = int(inputs["input_ids"].shape[1])
    pixel_mb = inputs["pixel_values_videos"].numel() * inputs["pixel_values_videos"].element_size() / 2**20
    del inputs

    def memory_call():
        call_inputs = _inputs(lm, args.frames, args.height, args.width)  # its only holder: rows may free the pixels
        meter.start()
        t0 = time.perf_counter()
        value = _forward(args.measure, lm, call_inputs, layers, args.groups_per_chunk)
        _sync(args.device)
        return value, time.perf_counter() - t0, meter.peak_mb()

    result, first_s, peak = memory_call()  # cold: the first forward of the process, one-time costs included
    if result is not None and args.rows_out:
        np.save(args.rows_out, result.float().cpu().numpy())
    result_shape, result = list(result.shape) if result is not None else None, None
    _, _, warm_peak = memory_call()
    fresh = _inputs(lm, args.frames, args.height, args.width)
    times = []
    for _ in range(args.repeats):
        call_inputs = dict(fresh)
        _sync(args.device)
        t0 = time.perf_counter()
        _forward(args.measure, lm, call_inputs, layers, args.groups_per_chunk)
        _sync(args.device)
        times.append(time.perf_counter() - t0)
    return {"measure": args.measure, "video_tokens": video_tokens, "seq_len": length, "layers": len(layers),
            "heads": lm.model.config.text_config.num_attention_heads, "pixel_values_mb": pixel_mb,
            "peak_delta_mb": peak, "warm_peak_delta_mb": warm_peak, "first_s": first_s,
            "median_s": statistics.median(times), "row_shape": result_shape, "dtype": str(lm.model.dtype),
            "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"}


def measure_stages(args) -> dict:
    """Peak memory and time of each part of the forward, each over the state just before it.

    The stages run twice and the second round is reported: the first carries the process's one-time costs
    (kernel and library initialisation, ~15 MB of RSS on CPU), which would otherwise land on the first stage.
    """
    import torch

    from rbft_core.inspection.attention_rows import capture_rows, text_attention_layers
    from rbft_core.models.video_features import encode_video_features, serve_video_features, served_pixels

    lm = _load(args, "sdpa")
    layers = [m.layer_idx for m in text_attention_layers(lm.model)]
    meter, out = Meter(args.device), {"measure": "stages"}

    def stage(name, fn):
        meter.start()
        t0 = time.perf_counter()
        with torch.inference_mode():
            value = fn()
        _sync(args.device)
        out[name] = {"peak_delta_mb": meter.peak_mb(), "s": time.perf_counter() - t0}
        return value

    for _ in range(2):
        inputs = _inputs(lm, args.frames, args.height, args.width)
        pixels, grid = inputs.pop("pixel_values_videos"), inputs["video_grid_thw"]
        last = torch.tensor([int(inputs["input_ids"].shape[1]) - 1])
        whole = stage("vision_whole", lambda: lm.model.model.get_video_features(pixels, grid))
        del whole
        features = stage("vision_chunked", lambda: encode_video_features(lm.model, pixels, grid,
                                                                         groups_per_chunk=args.groups_per_chunk))
        placeholder = served_pixels(pixels)
        del pixels

        def lm_pass(use_cache: bool):
            with serve_video_features(lm.model, features), capture_rows(lm.model, last, layers):
                lm.model(**inputs, pixel_values_videos=placeholder, logits_to_keep=1, use_cache=use_cache)

        stage("lm_with_kv_cache", lambda: lm_pass(True))
        stage("lm_no_cache", lambda: lm_pass(False))
        del features
    return out


def _child(args, measure: str, model_dir: str, rows_out: str = "") -> dict:
    command = [sys.executable, __file__, "--measure", measure, "--model-dir", model_dir, "--rows-out", rows_out,
               "--device", args.device, "--shape", args.shape, "--frames", str(args.frames),
               "--height", str(args.height), "--width", str(args.width), "--repeats", str(args.repeats),
               "--groups-per-chunk", str(args.groups_per_chunk)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), MALLOC_MMAP_THRESHOLD_=MALLOC_MMAP_THRESHOLD)
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{measure} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _report(results: dict, stages: dict, rows_vs_eager: float) -> dict:
    sdpa, rows, eager = (results[v] for v in VARIANTS)
    print(f"device {rows['device']}, {rows['dtype']}, {rows['video_tokens']} video tokens, sequence {rows['seq_len']}, "
          f"{rows['layers']} text layers x {rows['heads']} heads; pixel values {rows['pixel_values_mb']:.1f} MB")
    for r in results.values():
        print(f"{r['measure']:>6}: peak +{r['peak_delta_mb']:9.1f} MB (second call +{r['warm_peak_delta_mb']:.1f} MB) | "
              f"forward {r['median_s'] * 1000:9.1f} ms (first {r['first_s'] * 1000:.0f} ms)")
    kept_mb = eager["layers"] * eager["heads"] * eager["seq_len"] ** 2 * (2 if "bfloat16" in eager["dtype"] else 4) / 2**20
    print(f"  eager keeps {eager['layers']} x [{eager['heads']}, L, L] = {kept_mb:.0f} MB of weights; rows keep "
          f"{rows['layers']} x [{rows['heads']}, 1, L] fp32 = {rows['layers'] * rows['heads'] * rows['seq_len'] * 4 / 2**10:.0f} KB;"
          f" max |rows - eager rows| = {rows_vs_eager:.2e}")
    print("breakdown (each stage over the memory just before it; second round, one-time costs excluded):")
    for name, s in stages.items():
        if name != "measure":
            print(f"  {name:>17}: peak +{s['peak_delta_mb']:9.1f} MB | {s['s'] * 1000:9.1f} ms")
    mem_ratio = rows["peak_delta_mb"] / eager["peak_delta_mb"]
    time_ratio = rows["median_s"] / sdpa["median_s"]
    print(f"memory rows / eager = {mem_ratio:.4f} (1/{1 / max(mem_ratio, 1e-9):.0f}); "
          f"goal <= 0.05: {'met' if mem_ratio <= 0.05 else 'NOT met'}")
    print(f"memory sdpa / eager = {sdpa['peak_delta_mb'] / eager['peak_delta_mb']:.4f} (a plain forward, for reference)")
    print(f"time rows / sdpa    = {time_ratio:.3f}; goal <= 1.5: {'met' if time_ratio <= 1.5 else 'NOT met'}")
    print(f"time eager / sdpa   = {eager['median_s'] / sdpa['median_s']:.3f}")
    return {"results": results, "stages": stages, "memory_ratio": mem_ratio, "time_ratio": time_ratio,
            "rows_vs_eager_max_abs": rows_vs_eager}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bf16 on cuda)")
    parser.add_argument("--shape", choices=["tiny", "7b"], default="tiny")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=448)
    parser.add_argument("--width", type=int, default=896)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--groups-per-chunk", type=int, default=1, help="temporal groups per vision-tower chunk")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--measure", choices=[*VARIANTS, "stages"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--rows-out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        result = measure_stages(args) if args.measure == "stages" else measure_variant(args)
        print(json.dumps(result))
        return 0
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = ""
        if args.shape == "tiny":
            from rbft_core.models.tiny import TinySpec, build_tiny_model

            model_dir = str(build_tiny_model(Path(tmp) / "tiny", TinySpec(family="qwen2_5_vl")))
        results = {v: _child(args, v, model_dir, str(Path(tmp) / f"{v}.npy")) for v in VARIANTS}
        stages = _child(args, "stages", model_dir)
        rows_vs_eager = float(np.abs(np.load(Path(tmp) / "rows.npy") - np.load(Path(tmp) / "eager.npy")).max())
    summary = _report(results, stages, rows_vs_eager)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory and time of one attention map at ~4,096 video tokens on the tiny model.

Variants, each measured in its own fresh subprocess (so one variant's peak cannot hide another's):

- ``eager``: the model loaded with eager attention, ``output_attentions=True`` (every layer's [H, L, L]);
- ``sdpa``: a plain sdpa forward (no weights; the time floor);
- ``rows``: the project's method (``attention_rows.capture_rows``: sdpa output + the query row on all layers).

Memory is the peak RSS of the forward minus the RSS just before it (ru_maxrss; no warm-up forward before the
memory measurement); time is the median of ``--repeats`` forwards after a warm-up. Goals: rows <= 1/20 of
eager's memory and <= 1.5x the sdpa time.

    python bench/bench_attention.py [--repeats 5] [--frames 16 --height 448 --width 896]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _inputs(lm, frames: int, height: int, width: int):
    import numpy as np

    from rbft_core.models import encode_prompts
    from rbft_core.video import SampledVideo

    vp = lm.processor.video_processor
    vp.size = {"shortest_edge": 4 * 28 * 28, "longest_edge": height * width}  # keep the frames as given
    pixels = np.random.default_rng(0).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
    video = SampledVideo(frames=pixels, timestamps_s=[i * 0.5 for i in range(frames)], frame_indices=list(range(frames)),
                         source_fps=2.0, duration_s=frames / 2, source_size=(width, height), total_num_frames=frames)
    return encode_prompts(lm.processor, ["Is this video normal or abnormal? Answer with one word."], [video])


def run_variant(variant: str, model_dir: str, frames: int, height: int, width: int, repeats: int) -> dict:
    import torch

    from rbft_core.attention_rows import capture_rows, text_attention_layers
    from rbft_core.models import load_vlm

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    lm = load_vlm(model_dir, attn_implementation="eager" if variant == "eager" else "sdpa")
    inputs = _inputs(lm, frames, height, width)
    video_tokens = int((inputs["input_ids"] == lm.model.config.video_token_id).sum())
    length = int(inputs["input_ids"].shape[1])
    layers = [m.layer_idx for m in text_attention_layers(lm.model)]
    row = torch.tensor([length - 1])

    def forward():
        with torch.inference_mode():
            if variant == "eager":
                out = lm.model(**inputs, output_attentions=True, logits_to_keep=1)
                return torch.stack([a[0, :, length - 1, :] for a in out.attentions])
            if variant == "rows":
                with capture_rows(lm.model, row, layers) as cap:
                    lm.model(**inputs, logits_to_keep=1)
                return torch.stack([cap.rows[i][0, :, 0, :] for i in layers])
            lm.model(**inputs, logits_to_keep=1)
            return None

    before = _rss_mb()
    t0 = time.perf_counter()
    result = forward()
    first_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        forward()
        times.append(time.perf_counter() - t0)
    return {"variant": variant, "video_tokens": video_tokens, "seq_len": length, "layers": len(layers),
            "peak_delta_mb": peak - before, "first_s": first_s, "median_s": statistics.median(times),
            "row_shape": list(result.shape) if result is not None else None,
            "row_sum": float(result.sum()) if result is not None else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=["eager", "sdpa", "rows"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=448)
    parser.add_argument("--width", type=int, default=896)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.model_dir, args.frames, args.height, args.width, args.repeats)))
        return 0
    from rbft_core.tiny import TinySpec, build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_tiny_model(Path(tmp) / "tiny", TinySpec(family="qwen2_5_vl")))
        results = {}
        for variant in ("sdpa", "rows", "eager"):
            out = subprocess.run([sys.executable, __file__, "--variant", variant, "--model-dir", model_dir,
                                  "--frames", str(args.frames), "--height", str(args.height), "--width", str(args.width),
                                  "--repeats", str(args.repeats)], capture_output=True, text=True,
                                 env=dict(os.environ, PYTHONPATH=str(ROOT)))
            if out.returncode:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    for r in results.values():
        print(f"{r['variant']:>6}: {r['video_tokens']} video tokens, sequence {r['seq_len']}, {r['layers']} layers | "
              f"peak +{r['peak_delta_mb']:8.1f} MB | forward {r['median_s'] * 1000:8.1f} ms (first {r['first_s'] * 1000:.0f} ms)")
    # what the weights add on top of a plain forward (the vision tower and activations are common to all three)
    extra = {v: max(0.0, results[v]["peak_delta_mb"] - results["sdpa"]["peak_delta_mb"]) for v in ("rows", "eager")}
    print(f"attention memory over the sdpa forward: rows +{extra['rows']:.1f} MB, eager +{extra['eager']:.1f} MB "
          f"(analytic: eager keeps {results['eager']['layers']} x [H, L, L] fp32 = "
          f"{results['eager']['layers'] * 4 * results['eager']['seq_len'] ** 2 * 4 / 2**20:.0f} MB; rows keep "
          f"{results['rows']['layers']} x [H, 1, L] = {results['rows']['layers'] * 4 * results['rows']['seq_len'] * 4 / 2**10:.0f} KB)")
    mem_ratio = results["rows"]["peak_delta_mb"] / results["eager"]["peak_delta_mb"]
    time_ratio = results["rows"]["median_s"] / results["sdpa"]["median_s"]
    print(f"memory rows / eager (whole forward peak) = {mem_ratio:.4f} (1/{1 / mem_ratio:.1f}); "
          f"goal <= 1/20: {'met' if mem_ratio <= 0.05 else 'NOT met'}")
    print(f"time rows / sdpa    = {time_ratio:.3f}; goal <= 1.5: {'met' if time_ratio <= 1.5 else 'NOT met'}")
    print(f"time eager / sdpa   = {results['eager']['median_s'] / results['sdpa']['median_s']:.3f}")
    print(json.dumps({"results": results, "memory_ratio": mem_ratio, "attention_extra_mb": extra, "time_ratio": time_ratio}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Draw scene graphs as frames: backgrounds per place, simple sprites per subject, lighting, camera noise.

``render_clip`` returns frames [T, H, W, 3] uint8 straight as arrays (pre-training never decodes video)
and fills the spec's per-frame box of the critical object (the subject, all copies). ``render_world``
writes the home-security clips as H.264 mp4 with a ``manifest.jsonl`` that keeps every clip's scene
graph, rule, and boxes (the importer stores them in the video's metadata, for masking).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from rbft_core.demo.world import PEOPLE, ClipSpec, sample_task_spec, stratified_split
from rbft_core.errors import ConfigError

__all__ = ["WorldSpec", "render_clip", "render_world", "background", "uniform_indices", "write_mp4"]

SKY, GRASS = (140, 185, 230), (80, 150, 70)
SCENE_COLOURS = {  # wall / sky (top), floor (bottom)
    "porch": ((180, 160, 135), (125, 95, 70)),
    "living room": ((215, 205, 180), (150, 110, 80)),
    "driveway": (SKY, (95, 95, 100)),
    "backyard": (SKY, GRASS),
    "garden": (SKY, (70, 140, 60)),
    "street": (SKY, (70, 70, 75)),
    "park": (SKY, (95, 165, 80)),
    "kitchen": ((235, 235, 230), (190, 170, 140)),
}
CLOTHING_RGB = {"red": (200, 40, 40), "blue": (40, 70, 200), "grey": (125, 125, 125), "yellow": (230, 200, 40),
                "green": (40, 150, 60), "brown": (120, 75, 30)}
ANIMALS = {  # colour, (width, height) as fractions of the frame
    "dog": ((135, 85, 40), (0.28, 0.20)),
    # white: drawn grey, 15 levels from the raccoon, no model told a cat from a raccoon at 112 x 84 px under the
    # camera noise (the demo base model called 95 % of the cats raccoons; docs/benchmarks.md)
    "cat": ((225, 225, 220), (0.20, 0.14)),
    "bear": ((35, 22, 12), (0.38, 0.36)),
    "deer": ((185, 135, 80), (0.28, 0.40)),
    "raccoon": ((120, 120, 115), (0.22, 0.15)),
}
# Large on purpose: at the model's 112 x 84 px a sprite must span whole 14-px patches to be recognisable.
PERSON_HEIGHT = {"person": 0.52, "courier": 0.52, "child": 0.32}
SCALE = {"small": 0.85, "medium": 1.0, "large": 1.2}
SKIN, PACKAGE = (230, 190, 160), (205, 160, 95)


@dataclass
class WorldSpec:
    """Size and seed of the home-security world.

    Args:
        num_clips: clips, half of them abnormal.
        num_frames / fps: frames per clip and their rate (8-16 frames).
        size: (width, height) in pixels; multiples of 28 keep the model's frames unresized.
        seed: draws the clips and the split.
        test_fraction: share of each label in the test split.
    """

    num_clips: int = 24
    num_frames: int = 12
    size: tuple[int, int] = (160, 120)
    fps: float = 4.0
    seed: int = 0
    test_fraction: float = 0.25

    def __post_init__(self) -> None:
        self.size = tuple(int(v) for v in self.size)
        if self.num_clips < 2:
            raise ConfigError(f"num_clips must be >= 2 (one per label), got {self.num_clips}")
        if self.num_frames < 2:
            raise ConfigError(f"num_frames must be >= 2, got {self.num_frames}")
        if min(self.size) < 28:
            raise ConfigError(f"size must be at least 28x28 pixels, got {self.size}")
        if not 0 <= self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be within [0, 1), got {self.test_fraction}")


def _rect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, colour) -> None:
    h, w = img.shape[:2]
    xa, xb, ya, yb = max(0, int(x0)), min(w, int(x1)), max(0, int(y0)), min(h, int(y1))
    if xa < xb and ya < yb:
        img[ya:yb, xa:xb] = colour


def _door_x(scene: str, w: int) -> float:
    return w * (0.5 if scene in {"porch", "living room", "kitchen"} else 0.8)


def background(scene: str, w: int, h: int) -> np.ndarray:
    """The empty place by day, float32 [H, W, 3]; each place has its own landmarks."""
    top, bottom = SCENE_COLOURS[scene]
    img = np.empty((h, w, 3), np.float32)
    horizon = int(h * 0.6)
    img[:horizon], img[horizon:] = top, bottom
    dx = _door_x(scene, w)
    if scene == "porch":
        _rect(img, dx - w * 0.08, h * 0.2, dx + w * 0.08, h * 0.6, (95, 55, 30))  # front door
        _rect(img, 0, h * 0.6, w, h * 0.64, (90, 70, 50))  # step
    elif scene == "living room":
        _rect(img, w * 0.05, h * 0.42, w * 0.35, h * 0.62, (150, 40, 50))  # sofa
        _rect(img, w * 0.62, h * 0.12, w * 0.9, h * 0.38, (170, 210, 235))  # window
        _rect(img, dx - w * 0.07, h * 0.22, dx + w * 0.07, h * 0.6, (160, 120, 80))  # inner door
    elif scene == "driveway":
        _rect(img, w * 0.68, h * 0.25, w * 0.95, h * 0.6, (225, 225, 220))  # garage door
        for y in (0.34, 0.43, 0.52):
            _rect(img, w * 0.68, h * y, w * 0.95, h * y + 1, (160, 160, 160))
    elif scene == "backyard":
        _rect(img, w * 0.55, h * 0.72, w * 0.97, h * 0.94, (45, 125, 225))  # pool
        _rect(img, 0, h * 0.5, w, h * 0.6, (150, 110, 70))  # fence
    elif scene == "garden":
        rng = np.random.default_rng(7)
        for x, y in rng.uniform((0.02, 0.63), (0.98, 0.98), size=(14, 2)):
            _rect(img, x * w, y * h, x * w + 3, y * h + 3, (230, 90, 160) if x < 0.5 else (240, 220, 60))
    elif scene == "street":
        _rect(img, 0, h * 0.6, w, h * 0.68, (170, 170, 165))  # sidewalk
        for x in range(0, w, max(8, w // 8)):
            _rect(img, x, h * 0.84, x + w * 0.06, h * 0.86, (240, 240, 240))
    elif scene == "park":
        for x in (0.15, 0.75):
            _rect(img, w * x - 2, h * 0.35, w * x + 2, h * 0.6, (100, 70, 40))
            _rect(img, w * x - w * 0.08, h * 0.12, w * x + w * 0.08, h * 0.38, (40, 110, 45))
    elif scene == "kitchen":
        _rect(img, 0, h * 0.45, w * 0.45, h * 0.6, (150, 105, 60))  # counter
        _rect(img, w * 0.05, h * 0.1, w * 0.4, h * 0.28, (200, 180, 150))  # cabinets
    return img


def _centre(spec: ClipSpec, t: float, w: int, h: int) -> tuple[float, float]:
    """Where the subject's feet are at time t in [0, 1]."""
    ground = h * 0.82
    door = _door_x(spec.scene, w)
    if spec.action == "walking by":
        return w * (0.1 + 0.8 * t), ground
    if spec.action == "running":
        return w * (0.02 + 1.1 * t), ground
    if spec.action in {"approaching the door", "leaving a package", "picking up a package"}:
        return w * 0.08 + (door - w * 0.08) * min(1.0, t * 1.4), ground - h * 0.16 * min(1.0, t * 1.4)
    if spec.action == "entering":
        return w * 0.08 + (door - w * 0.08) * min(1.0, t * 1.6), ground - h * 0.2 * min(1.0, t * 1.6)
    if spec.action == "climbing":
        return w * 0.3, ground - h * 0.4 * t
    return w * 0.42, ground  # lying still


def _person(img, spec: ClipSpec, cx: float, feet: float, w: int, h: int, held: bool) -> list[float]:
    height = PERSON_HEIGHT[spec.subject] * h * SCALE[spec.size]
    width = height * 0.34
    lying = spec.action == "lying still"
    if lying:
        width, height = height, width
    x0, y0 = cx - width / 2, feet - height
    body = CLOTHING_RGB[spec.clothing.split()[1]]
    if lying:
        _rect(img, x0 + width * 0.2, y0, x0 + width, feet, body)
        _rect(img, x0, y0, x0 + width * 0.2, feet, SKIN)
    else:
        head = height * 0.2
        _rect(img, cx - width * 0.3, y0, cx + width * 0.3, y0 + head, SKIN)
        _rect(img, x0, y0 + head, x0 + width, feet - height * 0.3, body)
        _rect(img, x0 + width * 0.1, feet - height * 0.3, x0 + width * 0.9, feet, (40, 40, 60))  # legs
        if spec.subject == "courier":
            _rect(img, cx - width * 0.35, y0, cx + width * 0.35, y0 + head * 0.35, (80, 50, 20))  # cap
        if held:
            _rect(img, x0 + width * 0.6, y0 + height * 0.4, x0 + width * 1.3, y0 + height * 0.62, PACKAGE)
            return [x0, y0, x0 + width * 1.3, feet]
    return [x0, y0, x0 + width, feet]


def _animal(img, spec: ClipSpec, cx: float, feet: float, w: int, h: int) -> list[float]:
    colour, (fw, fh) = ANIMALS[spec.subject]
    bw, bh = fw * w * SCALE[spec.size], fh * h * SCALE[spec.size]
    if spec.action == "lying still":
        bh *= 0.6
    x0, y0 = cx - bw / 2, feet - bh
    legs = bh * (0.5 if spec.subject == "deer" else 0.25)
    _rect(img, x0, y0 + bh * 0.15, x0 + bw * 0.8, feet - legs, colour)  # body
    _rect(img, x0 + bw * 0.72, y0, x0 + bw, y0 + bh * 0.45, colour)  # head
    for lx in (0.08, 0.6):
        _rect(img, x0 + bw * lx, feet - legs, x0 + bw * (lx + 0.1), feet, colour)
    if spec.subject == "raccoon":
        for sx in (0.0, 0.12):
            _rect(img, x0 + bw * sx, y0 + bh * 0.2, x0 + bw * (sx + 0.06), feet - legs, (25, 25, 25))
        _rect(img, x0 + bw * 0.8, y0 + bh * 0.12, x0 + bw, y0 + bh * 0.25, (20, 20, 20))  # mask
    elif spec.subject == "deer":
        _rect(img, x0 + bw * 0.8, y0 - bh * 0.2, x0 + bw * 0.86, y0, (90, 60, 30))  # antler
    elif spec.subject == "cat":
        _rect(img, x0 + bw * 0.74, y0 - bh * 0.15, x0 + bw * 0.8, y0, colour)  # ear
    return [x0, y0 - (bh * 0.2 if spec.subject in {"deer", "cat"} else 0), x0 + bw, feet]


def render_clip(spec: ClipSpec, *, num_frames: int = 12, size: tuple[int, int] = (160, 120), noise: bool = True,
                frame_indices: Optional[list[int]] = None) -> np.ndarray:
    """Render frames [T, H, W, 3] uint8 and fill ``spec.boxes`` with the critical object's boxes.

    ``frame_indices``: render only these of the ``num_frames`` (what uniform sampling would pick).
    """
    w, h = size
    rng = np.random.default_rng(spec.seed)
    base = background(spec.scene, w, h)
    frames, spec.boxes = [], []
    for i in (range(num_frames) if frame_indices is None else frame_indices):
        t = i / max(1, num_frames - 1)
        img = base.copy()
        cx, feet = _centre(spec, t, w, h)
        if spec.action == "entering" and t > 0.8:  # gone through the door
            cx = -10 * w
        held = spec.subject in PEOPLE and (
            (spec.action == "picking up a package" and t > 0.65) or (spec.action == "leaving a package" and t < 0.6)
            or spec.subject == "courier" and spec.action != "leaving a package")
        if spec.package and not held and not (spec.action == "picking up a package" and t > 0.65) \
                and not (spec.action == "leaving a package" and t < 0.6):
            px, py = _door_x(spec.scene, w) + w * 0.1, h * 0.7
            _rect(img, px - w * 0.04, py - h * 0.07, px + w * 0.04, py, PACKAGE)
        boxes = []
        for k in range(spec.count):
            off = k * w * 0.22
            if spec.subject in PEOPLE:
                boxes.append(_person(img, spec, cx + off, feet, w, h, held))
            else:
                boxes.append(_animal(img, spec, cx + off, feet, w, h))
        if spec.companion:
            _person(img, ClipSpec("", spec.scene, spec.night, "person", "walking by", "medium", "a grey coat"),
                    cx + w * 0.14, feet, w, h, False)
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        # whole pixels, rounded outwards: the box holds every pixel the sprite painted
        box = [max(0, math.floor(x0)), max(0, math.floor(y0)), min(w, math.ceil(x1)), min(h, math.ceil(y1))]
        spec.boxes.append([float(v) for v in box] if box[0] < box[2] and box[1] < box[3] else [])  # [] = out of frame
        if spec.night:
            img = img * np.array([0.3, 0.32, 0.42], np.float32)
        if noise:
            img += rng.standard_normal(img.shape, dtype=np.float32) * 5.0  # camera noise
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(frames)


def uniform_indices(total: int, count: int) -> list[int]:
    """The frames ``rbft_core.data.video`` samples uniformly (centre of equal segments)."""
    return [min(total - 1, int((i + 0.5) * total / count)) for i in range(count)]


def write_mp4(frames: np.ndarray, fps: float, path: Path) -> Path:
    """H.264 yuv420p through PyAV (browser-playable; much faster than moviepy for many small clips)."""
    import av  # PyAV (FFmpeg) loads only when a video is decoded

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        # Deterministic encoding: with CRF rate control (and threaded colour conversion) x264 wrote other bytes --
        # other pixels, up to 26 levels -- on each render of the same frames, so a re-rendered world was other data
        # and the same run spec gave other metrics. A constant quantiser and one thread give the same file every time.
        stream.thread_count = 1
        stream.options = {"preset": "veryfast", "qp": "18", "threads": "1"}
        for frame in frames:
            yuv = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p", threads=1)
            container.mux(stream.encode(yuv))
        container.mux(stream.encode())
    tmp.replace(path)
    return path


def world_specs(world: WorldSpec) -> list[ClipSpec]:
    """The world's clips, alternating abnormal/normal, drawn from ``world.seed`` (deterministic)."""
    rng = random.Random(world.seed)
    return [sample_task_spec(rng, f"clip_{i:04d}", abnormal=(i % 2 == 1)) for i in range(world.num_clips)]


def render_world(out_dir: str | Path, world: WorldSpec | None = None,
                 progress: Optional[Callable[[int, int, str], None]] = None) -> Path:
    """Render the balanced home-security clips into ``out_dir`` with ``manifest.jsonl`` (reused when complete)."""
    world = world or WorldSpec()
    out = Path(out_dir)
    manifest, stamp = out / "manifest.jsonl", out / "world.json"
    # the spec and the drawing code: a world rendered by an older renderer (another sprite) is rendered again
    key = {**json.loads(json.dumps(asdict(world))), "renderer": renderer_key()}
    if manifest.exists() and stamp.exists() and json.loads(stamp.read_text()) == key:
        return manifest
    specs = world_specs(world)
    splits = stratified_split(specs, world.seed, world.test_fraction)
    rows = []
    for i, spec in enumerate(specs):
        frames = render_clip(spec, num_frames=world.num_frames, size=world.size)
        path = write_mp4(frames, world.fps, out / "clips" / f"{spec.clip_id}.mp4")
        rows.append({"path": f"clips/{path.name}", "label": spec.label, "split": splits[spec.clip_id], "id": spec.clip_id,
                     "scene_graph": spec.scene_graph(), "reason": spec.reason, "category": spec.category,
                     "critical_object": spec.subject, "boxes": spec.boxes, "frame_size": list(world.size)})
        if progress:
            progress(i + 1, len(specs), spec.clip_id)
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stamp.write_text(json.dumps(key))
    return manifest


def renderer_key() -> str:
    """Hash of the code that draws a world's clips (this module and the scene graphs of ``world``)."""
    digest = hashlib.sha256()
    for module in (Path(__file__), Path(__file__).with_name("world.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()[:16]

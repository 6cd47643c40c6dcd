"""A small synthetic smart-home world the project owns: procedurally rendered clips with scene graphs.

Each clip is a home scene (porch, living room, driveway, backyard; day or night; camera noise) with
one or two subjects drawn as simple sprites that move according to an action. Every clip keeps its
scene graph (subjects, attributes, actions, scene) and per-frame boxes of its critical object, and a
normal/abnormal label from domain rules close to SmartHome-Bench's categories.

``prepare_demo`` renders the world (cached), builds the tiny base model (cached) and imports the
dataset, so ``make run`` opens the app with something to review.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

__all__ = ["ClipSpec", "WorldSpec", "sample_clip_spec", "render_clip", "render_world", "prepare_demo", "label_for"]

SCENES = {
    # name: (background RGB by day, floor RGB, door box as fractions or None, pool box or None)
    "porch": ((176, 160, 140), (120, 96, 72), (0.42, 0.18, 0.58, 0.72), None),
    "living room": ((200, 190, 170), (150, 110, 80), None, None),
    "driveway": ((150, 170, 190), (90, 90, 95), (0.75, 0.25, 0.88, 0.70), None),
    "backyard": ((140, 190, 230), (80, 150, 70), None, (0.55, 0.70, 0.95, 0.92)),
}
SUBJECTS = {
    # name: (base colour, (width, height) as fraction of frame, shape)
    "person": ((60, 60, 160), (0.10, 0.38), "person"),
    "child": ((220, 120, 40), (0.07, 0.22), "person"),
    "courier": ((150, 90, 30), (0.10, 0.38), "person"),
    "dog": ((120, 80, 40), (0.16, 0.10), "animal"),
    "cat": ((90, 90, 90), (0.09, 0.07), "animal"),
    "bear": ((40, 25, 15), (0.24, 0.22), "animal"),
    "deer": ((160, 110, 60), (0.18, 0.24), "animal"),
    "raccoon": ((110, 110, 105), (0.10, 0.07), "animal"),
}
ACTIONS = (
    "walking by",
    "approaching the door",
    "entering",
    "running",
    "climbing",
    "lying still",
    "picking up a package",
    "leaving a package",
)
CLOTHING = ("a red jacket", "a blue hoodie", "a brown uniform", "a grey coat", "a yellow raincoat")
SIZES = ("small", "medium", "large")
WILDLIFE = {"bear", "deer", "raccoon"}


@dataclass
class ClipSpec:
    """The scene graph of one clip (what a perfect rationale would say) and its label."""

    clip_id: str
    scene: str
    night: bool
    subject: str
    action: str
    size: str
    clothing: str = ""
    count: int = 1
    companion: str = ""  # an adult with the child, or none
    package: bool = False
    label: str = "normal"
    reason: str = ""
    seed: int = 0
    boxes: list[list[float]] = field(default_factory=list)  # per-frame critical-object box, pixels x0,y0,x1,y1

    def subjects_text(self) -> str:
        who = self.subject if self.count == 1 else f"{self.count} {self.subject}s"
        extra = f" and an adult ({self.companion})" if self.companion else ""
        return f"a {who}{extra}" if self.count == 1 else who + extra

    def scene_graph(self) -> dict[str, str]:
        attrs = [self.size]
        if self.clothing:
            attrs.append(f"wearing {self.clothing}")
        if self.package:
            attrs.append("a cardboard package is visible")
        light = "at night, dim light" if self.night else "during the day, bright light"
        return {
            "subjects": self.subjects_text(),
            "attributes": ", ".join(attrs),
            "actions": self.action,
            "scenes": f"{self.scene}, {light}, fixed home security camera",
        }


def label_for(spec: ClipSpec) -> tuple[str, str]:
    """Domain rules close to SmartHome-Bench's categories: (label, reason)."""
    if spec.subject in WILDLIFE and spec.scene == "porch" and spec.night:
        return "abnormal", "wildlife on the porch at night"
    if spec.subject == "bear":
        return "abnormal", "a bear near the house"
    if spec.subject == "child" and spec.scene == "backyard" and not spec.companion:
        return "abnormal", "a child near the pool alone"
    if spec.subject == "person" and spec.action == "picking up a package":
        return "abnormal", "a stranger taking a package"
    if spec.subject == "person" and spec.action == "climbing":
        return "abnormal", "a person climbing into the property"
    if spec.subject == "person" and spec.night and spec.action == "entering":
        return "abnormal", "a stranger entering at night"
    if spec.subject == "courier" and spec.action == "leaving a package":
        return "normal", "a courier leaving a package"
    if spec.subject in {"dog", "cat"}:
        return "normal", "the family pet at home"
    return "normal", "ordinary activity"


def sample_clip_spec(rng: random.Random, clip_id: str, *, abnormal: Optional[bool] = None) -> ClipSpec:
    """Draw a clip; ``abnormal`` forces the label by rejection sampling (balanced datasets)."""
    while True:
        subject = rng.choice(list(SUBJECTS))
        scene = rng.choice(list(SCENES))
        action = rng.choice(ACTIONS)
        if SUBJECTS[subject][2] == "animal" and action in {"picking up a package", "leaving a package", "entering"}:
            action = rng.choice(("walking by", "running", "lying still", "climbing", "approaching the door"))
        if subject == "courier":
            action = rng.choice(("leaving a package", "approaching the door", "walking by"))
        spec = ClipSpec(
            clip_id=clip_id,
            scene=scene,
            night=rng.random() < 0.45,
            subject=subject,
            action=action,
            size=rng.choice(SIZES),
            clothing=rng.choice(CLOTHING) if SUBJECTS[subject][2] == "person" else "",
            count=2 if subject in {"dog", "deer"} and rng.random() < 0.25 else 1,
            companion="a parent" if subject == "child" and rng.random() < 0.5 else "",
            package=action in {"picking up a package", "leaving a package"} or (scene == "porch" and rng.random() < 0.3),
            seed=rng.randrange(2**31),
        )
        spec.label, spec.reason = label_for(spec)
        if abnormal is None or (spec.label == "abnormal") == abnormal:
            return spec


def _box(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, colour) -> None:
    h, w = img.shape[:2]
    xa, xb = max(0, int(x0)), min(w, int(x1))
    ya, yb = max(0, int(y0)), min(h, int(y1))
    if xa < xb and ya < yb:
        img[ya:yb, xa:xb] = colour


def _background(spec: ClipSpec, w: int, h: int) -> np.ndarray:
    wall, floor, door, pool = SCENES[spec.scene]
    img = np.empty((h, w, 3), np.float32)
    img[: int(h * 0.62)] = wall
    img[int(h * 0.62) :] = floor
    if door:
        _box(img, door[0] * w, door[1] * h, door[2] * w, door[3] * h, (90, 50, 30))
    if pool:
        _box(img, pool[0] * w, pool[1] * h, pool[2] * w, pool[3] * h, (40, 120, 220))
    return img


def _trajectory(spec: ClipSpec, t: float, w: int, h: int) -> tuple[float, float]:
    """Centre (x, y) of the subject at time t in [0, 1]."""
    ground = h * 0.80
    door_x = w * 0.5 if spec.scene == "porch" else w * 0.8
    if spec.action in {"walking by", "running"}:
        speed = 1.0 if spec.action == "running" else 0.6
        return w * (0.05 + 0.9 * min(1.0, t * speed / 0.6)), ground
    if spec.action in {"approaching the door", "entering", "leaving a package", "picking up a package"}:
        return w * 0.1 + (door_x - w * 0.1) * min(1.0, t * 1.3), ground - h * 0.05 * t
    if spec.action == "climbing":
        return w * 0.3, ground - h * 0.45 * t
    return w * 0.4, ground  # lying still


def render_clip(spec: ClipSpec, *, num_frames: int = 12, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """Render frames [T, H, W, 3] uint8 and fill ``spec.boxes`` with the critical object's boxes."""
    w, h = size
    rng = np.random.default_rng(spec.seed)
    base = _background(spec, w, h)
    colour = np.array(SUBJECTS[spec.subject][0], np.float32)
    if spec.clothing:
        colour = np.array(
            {"red": (200, 40, 40), "blue": (40, 70, 200), "brown": (130, 80, 30), "grey": (120, 120, 120),
             "yellow": (230, 200, 40)}[spec.clothing.split()[1]], np.float32,
        )
    scale = {"small": 0.75, "medium": 1.0, "large": 1.3}[spec.size]
    bw, bh = (SUBJECTS[spec.subject][1][0] * w * scale, SUBJECTS[spec.subject][1][1] * h * scale)
    frames, spec.boxes = [], []
    for i in range(num_frames):
        t = i / max(1, num_frames - 1)
        img = base.copy()
        cx, cy = _trajectory(spec, t, w, h)
        if spec.action == "lying still":
            bw_i, bh_i = max(bw, bh), min(bw, bh) * 0.6
        else:
            bw_i, bh_i = bw, bh
        box = [cx - bw_i / 2, cy - bh_i, cx + bw_i / 2, cy]
        for k in range(spec.count):
            off = k * bw_i * 1.2
            _box(img, box[0] + off, box[1], box[2] + off, box[3], colour)
            if SUBJECTS[spec.subject][2] == "person":  # a head
                _box(img, cx - bw_i * 0.25 + off, box[1] - bh_i * 0.18, cx + bw_i * 0.25 + off, box[1], (230, 190, 160))
        if spec.companion:
            _box(img, box[2] + 4, cy - bh * 1.6, box[2] + 4 + bw, cy, (50, 50, 50))
        if spec.package:
            held = spec.action == "picking up a package" and t > 0.6
            px = cx if held else (w * 0.5 if spec.scene == "porch" else w * 0.7)
            py = cy - bh_i * 0.5 if held else h * 0.8
            if not (spec.action == "leaving a package" and t < 0.5):
                _box(img, px - 6, py - 8, px + 6, py, (200, 160, 90))
        spec.boxes.append([round(max(0.0, box[0]), 1), round(max(0.0, box[1]), 1),
                           round(min(w, box[2] + (spec.count - 1) * bw_i * 1.2), 1), round(min(h, box[3]), 1)])
        if spec.night:
            img *= 0.35
        img += rng.normal(0, 6.0, img.shape)  # camera noise
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(frames)


@dataclass
class WorldSpec:
    num_clips: int = 24
    num_frames: int = 12
    size: tuple[int, int] = (160, 120)
    fps: float = 4.0
    seed: int = 0
    test_fraction: float = 0.25


def render_world(out_dir: str | Path, world: WorldSpec | None = None) -> Path:
    """Render a balanced set of clips into ``out_dir`` with ``manifest.jsonl`` (cached: reused when complete)."""
    from rbft_core.video import write_clip

    world = world or WorldSpec()
    out = Path(out_dir)
    manifest = out / "manifest.jsonl"
    stamp = out / "world.json"
    if manifest.exists() and stamp.exists() and json.loads(stamp.read_text()) == asdict(world):
        return manifest
    (out / "clips").mkdir(parents=True, exist_ok=True)
    rng = random.Random(world.seed)
    rows = []
    for i in range(world.num_clips):
        spec = sample_clip_spec(rng, f"clip_{i:04d}", abnormal=(i % 2 == 1))
        frames = render_clip(spec, num_frames=world.num_frames, size=world.size)
        path = out / "clips" / f"{spec.clip_id}.mp4"
        write_clip(frames, world.fps, path)
        split = "test" if rng.random() < world.test_fraction else "train"
        rows.append({"path": f"clips/{path.name}", "label": spec.label, "split": split, "id": spec.clip_id,
                     "scene_graph": spec.scene_graph(), "reason": spec.reason, "boxes": spec.boxes})
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stamp.write_text(json.dumps(asdict(world)))
    return manifest


def prepare_demo(db_url: Optional[str] = None, *, progress: Optional[Callable[[int, int, str], None]] = None) -> dict:
    """Render (or reuse) the demo world, build (or reuse) the tiny base model, import the dataset."""
    from db.engine import init_db
    from rbft_core.importer import import_videos
    from rbft_core.settings import data_dir
    from rbft_core.tiny import TinySpec, build_tiny_model

    root = data_dir() / "demo"
    steps = 3
    if progress:
        progress(0, steps, "rendering the world")
    manifest = render_world(root / "world")
    if progress:
        progress(1, steps, "building the tiny model")
    model_dir = build_tiny_model(root / "models" / "tiny-qwen2_5_vl", TinySpec())
    if progress:
        progress(2, steps, "importing")
    init_db(db_url)
    report = import_videos(db_url, "demo-smart-home", root / "world", manifest=manifest, fmt="jsonl", preset="smart-home")
    if progress:
        progress(3, steps, "done")
    return {"dataset": "demo-smart-home", "videos": report.imported + report.unchanged, "model": str(model_dir)}

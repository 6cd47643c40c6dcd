"""Build (or reuse) the demo: the home-security world and the pre-trained tiny base model; import the dataset.

Both live under ``<data dir>/demo/``: ``world/`` (clips + manifest) and ``base-model/`` (a model folder that
``rbft_core.models.loading.load_vlm`` loads like any checkpoint, with ``build.json``: the cache key, the config, the
build time and the caption-accuracy check). The key hashes the build config and the source of every module
the build depends on, so a change of either rebuilds and an unchanged repeat returns at once.
``DemoConfig.fast()`` is the same world and model, smaller: it builds in seconds for the tests.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from db.engine import init_db
from rbft_core.data.importer import import_videos
from rbft_core.demo.pretrain import (
    PretrainConfig,
    caption_accuracy,
    pretrain_base_model,
)
from rbft_core.demo.render import WorldSpec, render_world
from rbft_core.errors import ConfigError
from rbft_core.models.model_sampling import SAMPLING_FILE, write_model_sampling
from rbft_core.settings import data_dir
from rbft_core.specs.sampling import Sampling

__all__ = ["DemoConfig", "DemoBuild", "build_demo", "prepare_demo", "demo_root", "demo_model_path", "demo_sampling",
           "DEMO_DATASET"]

DEMO_DATASET = "demo-smart-home"
Progress = Callable[[int, int, str], None]
# what the built model depends on besides the config (prepare.py itself is left out: its values are the config)
_SOURCES = ("demo/world.py", "demo/render.py", "demo/pretrain.py", "models/tiny.py", "models/prompts.py",
            "models/loading.py", "models/rationale.py")
# the world's fields the base model depends on (its frame geometry); the clip count, seed and split do not
# enter the key, so a report that renders more clips reuses the built model
_MODEL_WORLD_FIELDS = ("num_frames", "size", "fps")


@dataclass
class DemoConfig:
    """The whole demo build.

    Args:
        name: ``full`` (``make run``) or ``fast`` (tests); names the cache folders.
        world: the home-security clips.
        sample_frames: frames the model sees per clip (generation, both stages, evaluation); 4 keeps a sprite
            a visible share of the video tokens.
        pretrain: the base model's pre-training.
    """

    name: str = "full"
    world: WorldSpec = field(default_factory=lambda: WorldSpec(num_clips=240, num_frames=16, size=(112, 84), fps=8.0,
                                                               seed=0, test_fraction=0.25))
    sample_frames: int = 4
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    def __post_init__(self) -> None:
        if isinstance(self.world, dict):
            self.world = WorldSpec(**self.world)
        if isinstance(self.pretrain, dict):
            self.pretrain = PretrainConfig(**self.pretrain)
        if not self.name.replace("-", "").isalnum():
            raise ConfigError(f"demo name must be letters, digits or '-', got {self.name!r}")
        if not 1 <= self.sample_frames <= self.world.num_frames:
            raise ConfigError(f"sample_frames must be within [1, world.num_frames={self.world.num_frames}], "
                              f"got {self.sample_frames}")
        if any(v % 28 for v in self.world.size):
            raise ConfigError(f"world.size must be multiples of 28 (the model's patch grid), got {self.world.size}")

    @classmethod
    def fast(cls) -> "DemoConfig":
        """Fewer, shorter clips and a smaller model: builds in well under a minute on 2 cores."""
        return cls(
            name="fast",
            world=WorldSpec(num_clips=32, num_frames=8, size=(112, 84), fps=8.0, seed=0, test_fraction=0.25),
            sample_frames=4,
            pretrain=PretrainConfig(num_clips=400, heldout_clips=16, steps=400, qa_first_steps=60, qa_share=0.15, subject_share=0.5, batch_size=16, lr=3e-3, hidden_size=64,
                                    num_layers=2, num_heads=4, intermediate_size=192, vision_hidden_size=32,
                                    vision_depth=1, vocab_size=768, grounding_weight=0.0),
        )

    @classmethod
    def named(cls, name: str) -> "DemoConfig":
        if name not in ("full", "fast"):
            raise ConfigError(f"demo config must be 'full' or 'fast', got {name!r}")
        return cls.fast() if name == "fast" else cls()

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    def cache_key(self) -> str:
        """Hash of what the base model depends on (this config less the world's size, seed and split) and the
        source of the modules the build runs."""
        root = Path(__file__).resolve().parents[1]
        config = self.to_dict()
        config["world"] = {k: config["world"][k] for k in _MODEL_WORLD_FIELDS}
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
        for rel in _SOURCES:
            digest.update((root / rel).read_bytes())
        return digest.hexdigest()[:16]


@dataclass
class DemoBuild:
    config: DemoConfig
    manifest: Path
    model_dir: Path
    reused: bool
    info: dict

    def to_json(self) -> dict:
        return {"config": self.config.name, "manifest": str(self.manifest), "model": str(self.model_dir),
                "reused": self.reused, **self.info}


def demo_sampling(cfg: DemoConfig) -> Sampling:
    """What the demo base model was pre-trained on: ``sample_frames`` frames, each clip whole (the pixel budget
    covers the clip's size, so no frame is scaled down)."""
    width, height = cfg.world.size
    return Sampling(num_frames=cfg.sample_frames, max_pixels=max(112 * 112, width * height))


def demo_root() -> Path:
    return data_dir() / "demo"


def demo_model_path() -> str:
    """The built full demo base model's folder, or "" when ``rbft demo build`` has not run (a UI default)."""
    model_dir = _folders(DemoConfig(), demo_root())[1]
    return str(model_dir) if (model_dir / "build.json").is_file() else ""


def _folders(cfg: DemoConfig, root: Path) -> tuple[Path, Path]:
    suffix = "" if cfg.name == "full" else f"-{cfg.name}"
    return root / f"world{suffix}", root / f"base-model{suffix}"


def build_demo(cfg: Optional[DemoConfig] = None, *, root: Optional[Path] = None, progress: Optional[Progress] = None,
               rebuild: bool = False) -> DemoBuild:
    """Render (or reuse) the world and pre-train (or reuse) the base model; deterministic for a config."""
    cfg = cfg or DemoConfig()
    root = Path(root or demo_root())
    world_dir, model_dir = _folders(cfg, root)
    started = time.perf_counter()
    key = cfg.cache_key()
    stamp = model_dir / "build.json"
    cached = json.loads(stamp.read_text()) if stamp.is_file() else {}
    manifest = render_world(world_dir, cfg.world, progress=_phase(progress, "rendering the world"))
    if cached.get("key") == key and (model_dir / "config.json").is_file() and not rebuild:
        if not (model_dir / SAMPLING_FILE).is_file():  # a model built before the folder carried its sampling
            write_model_sampling(model_dir, demo_sampling(cfg))
        return DemoBuild(cfg, manifest, model_dir, True, {k: cached[k] for k in ("key", "build_seconds", "caption")})
    if model_dir.exists():
        shutil.rmtree(model_dir)
    geometry = dict(world_frames=cfg.world.num_frames, num_frames=cfg.sample_frames, size=cfg.world.size,
                    fps=cfg.world.fps)
    report = pretrain_base_model(model_dir, cfg.pretrain, progress=_phase(progress, "pre-training the base model"),
                                 **geometry)
    if progress:
        progress(0, 1, "checking captions on held-out clips")
    caption = caption_accuracy(model_dir, cfg.pretrain, **geometry)
    write_model_sampling(model_dir, demo_sampling(cfg))  # generate / train / inspect default to it
    info = {"key": key, "build_seconds": round(time.perf_counter() - started, 1), "caption": caption}
    stamp.write_text(json.dumps({**info, "config": cfg.to_dict(), "pretrain": {
        "seconds": report.seconds, "final_loss": report.final_loss, "losses": report.losses}}, indent=2))
    return DemoBuild(cfg, manifest, model_dir, False, info)


def _phase(progress: Optional[Progress], name: str) -> Optional[Progress]:
    if progress is None:
        return None
    return lambda done, total, detail="": progress(done, total, f"{name}: {detail}" if detail else name)


def prepare_demo(db_url: Optional[str] = None, *, config: Optional[DemoConfig] = None,
                 progress: Optional[Progress] = None) -> dict:
    """Build (or reuse) the world and base model, then import the clips as dataset ``demo-smart-home``."""

    build = build_demo(config, progress=progress)
    init_db(db_url)
    report = import_videos(db_url, DEMO_DATASET, build.manifest.parent, manifest=build.manifest, fmt="jsonl",
                           preset="smart-home")
    return {"dataset": DEMO_DATASET, "videos": report.imported + report.unchanged, "model": str(build.model_dir),
            "reused": build.reused, "caption_mean_field_exact": round(build.info["caption"]["mean_field_exact"], 3),
            "build_seconds": build.info["build_seconds"]}

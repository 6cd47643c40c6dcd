"""README's "Your own data in five commands" holds commands this CLI accepts, and its pipeline flags are the Train
tab's GPU preset (parsed and turned into specs, never run: nothing is downloaded)."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from rbft_core.cli.main import build_parser
from rbft_core.cli.tasks import pipeline_spec_from_args
from rbft_core.specs.data import ExportSpec, GenerateSpec, ImportSpec
from rbft_core.specs.flags import spec_values
from rbft_core.tabs.train import PRESETS

ROOT = Path(__file__).resolve().parents[2]
GPU_PRESET = "1 GPU, 24 GB (7B, LoRA r16)"


def _five_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Your own data in five commands", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    return [shlex.split(line) for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_five_commands_parse_with_this_cli_and_build_their_specs():
    commands = _five_commands()
    assert [c[1] for c in commands] == ["import", "generate", "app.py", "pipeline", "export"]
    parser = build_parser()
    parsed = {c[1]: parser.parse_args(c[1:]) for c in commands if c[0] == "rbft"}

    imp = parsed["import"]
    ImportSpec.from_dict({"dataset": imp.dataset, "source": imp.source, **spec_values(imp, ImportSpec)})
    gen = parsed["generate"]
    generate = GenerateSpec.from_dict({"dataset": gen.dataset, **spec_values(gen, GenerateSpec)})
    assert generate.model == "Qwen/Qwen2.5-VL-7B-Instruct" and generate.device == "cuda"
    exp = parsed["export"]
    ExportSpec.from_dict({"dataset": exp.dataset, **spec_values(exp, ExportSpec)})

    sys.path.insert(0, str(ROOT))
    import app  # the review step: the web app's own argument parser

    assert app.parse_args(commands[2][2:]).port == 7860


def test_the_pipeline_command_is_the_gpu_preset_and_generation_samples_as_it_trains():
    commands = {c[1]: c for c in _five_commands()}
    spec = pipeline_spec_from_args(build_parser().parse_args(commands["pipeline"][1:]))
    preset = PRESETS[GPU_PRESET]
    for stage, settings in (("stage1", spec.stage1), ("stage2", spec.stage2)):
        for key, value in preset[stage].items():
            if key == "fps" and not value:
                assert not settings.fps
                continue
            assert getattr(settings, key) == value, (stage, key)
        assert settings.target_modules == preset["common"]["target_modules"]
        assert settings.train_vision_merger == preset["common"]["train_vision_merger"]
        assert settings.model == "Qwen/Qwen2.5-VL-7B-Instruct" and settings.dtype == "bfloat16"
    assert spec.with_baselines
    generate = build_parser().parse_args(commands["generate"][1:])
    assert (generate.num_frames, generate.max_pixels) == (spec.stage1.num_frames, spec.stage1.max_pixels)

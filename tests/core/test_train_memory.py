"""A training process carries only what training uses: transformers' Trainer comes without ``datasets`` and the
pandas and pyarrow it pulls in (85 MB of resident memory on CPU; ``training/train_loop.trainer_class``)."""

import json
import subprocess
import sys

from rbft_core.specs.training import TrainSpec

HEAVY_UNUSED = ("datasets", "pandas", "pyarrow")

SCRIPT = """
import json, sys
from rbft_core.specs.training import TrainSpec
from rbft_core.training.train import train_stage
import transformers.utils
cfg = TrainSpec.from_dict(json.loads(sys.argv[2]))
result = train_stage(sys.argv[1], cfg)
import transformers.trainer
print(json.dumps({"status": result.status, "loaded": [m for m in %r if m in sys.modules],
                  "check_restored": transformers.utils.is_datasets_available(),
                  "trainer_sees": transformers.trainer.is_datasets_available()}))
""" % (HEAVY_UNUSED,)


def test_a_training_run_never_loads_datasets_pandas_or_pyarrow(world_dataset, tiny_model_dir):
    name, url = world_dataset
    cfg = TrainSpec(dataset=name, model=str(tiny_model_dir), stage=2, run_id="lean-imports", epochs=1, batch_size=4,
                    lora_rank=4, lora_alpha=8, seed=1, num_frames=4, max_pixels=4 * 28 * 28)
    done = subprocess.run([sys.executable, "-c", SCRIPT, url, json.dumps(cfg.to_dict())], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["status"] == "succeeded"
    assert out["loaded"] == []  # none of the three in the process, after a whole run
    assert out["check_restored"] is True  # the rest of the process still sees datasets installed
    assert out["trainer_sees"] is False  # only the Trainer module's own binding was switched off

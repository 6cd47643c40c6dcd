"""The embedded demo: a synthetic smart-home world and a tiny pre-trained base VLM.

``world`` (scene graphs, domain rules, split), ``render`` (frames, clips, manifest), ``pretrain`` (the base
model's caption pre-training), ``prepare`` (cached build + import), ``report`` (the experiment behind
docs/demo-results.{json,md}: tuned arms, paired statistics, the paper's questions; with ``report_data``,
``report_runs``, ``report_store``, ``report_stats``, ``report_tables``, ``report_md``, ``faithfulness``).
Nothing here imports torch until a build or a report runs.
"""

from rbft_core.demo.prepare import (
                                  DEMO_DATASET,
                                  DemoBuild,
                                  DemoConfig,
                                  build_demo,
                                  demo_model_path,
                                  demo_root,
                                  prepare_demo,
)
from rbft_core.demo.render import WorldSpec, background, render_clip, render_world
from rbft_core.demo.world import (
                                  RULES,
                                  ClipSpec,
                                  Rule,
                                  label_for,
                                  rule_for,
                                  sample_caption_spec,
                                  sample_clip_spec,
                                  sample_task_spec,
                                  stratified_split,
)

__all__ = [
    "ClipSpec", "Rule", "RULES", "WorldSpec", "DemoConfig", "DemoBuild", "DEMO_DATASET", "label_for", "rule_for",
    "sample_clip_spec", "sample_task_spec", "sample_caption_spec", "stratified_split", "render_clip", "render_world",
    "background", "build_demo", "prepare_demo", "demo_root", "demo_model_path",
]

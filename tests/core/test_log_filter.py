"""The log tail shows the project's own lines; library warnings, deprecation notes and tqdm bars are collapsed,
each distinct warning listed once with its count."""

from __future__ import annotations

from rbft_core.log_filter import filter_log, split_log
from rbft_core.tabs.runs import log_tail

SITE = "/venv/lib/python3.11/site-packages"
GC_WARNING = (f"{SITE}/transformers/modeling_utils.py:2371: FutureWarning: `gradient_checkpointing_enable` "
              "with use_reentrant unset is deprecated")
LOG = "\n".join([
    "job 7: pipeline started (dataset world)",
    *[line for _ in range(12) for line in (GC_WARNING, "  warnings.warn(")],
    f"{SITE}/torch/utils/checkpoint.py:87: UserWarning: None of the inputs have requires_grad=True",
    "  warnings.warn(",
    "`use_cache=True` is incompatible with gradient checkpointing. Setting `use_cache=False`.",
    "Map: 100%|██████████| 12/12 [00:00<00:00, 345.67 examples/s]",
    " 20%|██        | 2/10 [00:01<00:05,  1.50it/s]\r 50%|█████     | 5/10 [00:03<00:03,  1.50it/s]",
    "stage1: step 5/10, loss 2.3100, ETA 0:00:03",
    "stage1: step 10/10, loss 1.9000",
    "Stage I done: run 20261202-stage1-ab12",
])


def test_library_warnings_are_collapsed_and_each_listed_once_with_its_count():
    split = split_log(LOG.splitlines())
    assert split.lines == ["job 7: pipeline started (dataset world)", "stage1: step 5/10, loss 2.3100, ETA 0:00:03",
                           "stage1: step 10/10, loss 1.9000", "Stage I done: run 20261202-stage1-ab12"]
    assert list(split.warnings.values()) == [12, 1, 1]
    first = next(iter(split.warnings))
    assert first.startswith("FutureWarning: `gradient_checkpointing_enable`")
    text = filter_log(LOG)
    lines = text.splitlines()
    assert lines[:-1] == split.lines  # the project's lines, in order, nothing else
    assert lines[-1].startswith("[3 library warnings hidden: FutureWarning: `gradient_checkpointing_enable`")
    assert "(x12)" in lines[-1] and lines[-1].count("FutureWarning") == 1
    assert "UserWarning: None of the inputs have requires_grad=True (x1)" in lines[-1]
    assert "2 progress-bar lines hidden" in lines[-1]
    assert "warnings.warn(" not in text and "it/s]" not in text


def test_a_clean_log_is_left_as_it_is_and_the_tail_keeps_the_last_own_lines():
    own = [f"step {i}" for i in range(50)]
    assert filter_log("\n".join(own), lines=30) == "\n".join(own[-30:])  # no summary line when nothing is hidden
    noisy = "\n".join(line for i in range(50) for line in (f"step {i}", GC_WARNING, "  warnings.warn("))
    tail = filter_log(noisy, lines=5).splitlines()
    assert tail[:-1] == [f"step {i}" for i in range(45, 50)]  # the five last own lines, not five noise lines
    assert tail[-1] == "[1 library warning hidden: " + tail[-1].split(": ", 1)[1] and tail[-1].endswith("(x50)]")


def test_project_lines_that_mention_warnings_or_indentation_stay():
    text = "\n".join(["readiness: 2 warnings about class imbalance", "Traceback (most recent call last):",
                      '  File "x.py", line 1, in <module>', "ValueError: bad"])
    assert filter_log(text) == text  # a traceback after no warning keeps its indented lines


def test_log_tail_reads_the_file_through_the_filter(tmp_path):
    path = tmp_path / "job.log"
    path.write_text(LOG + "\n")
    shown = log_tail(path).splitlines()
    assert shown[0] == "job 7: pipeline started (dataset world)" and shown[-1].startswith("[3 library warnings hidden")
    assert log_tail(tmp_path / "missing.log") == "" and log_tail(None) == ""

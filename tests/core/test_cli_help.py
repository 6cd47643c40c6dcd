"""Every `rbft` command and option explains itself: `rbft --help` lists each command with one line, and every
option of every command has help text that states its default (flags that switch something on say "off")."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from rbft_core.cli.main import build_parser
from tests.conftest import REPO_ROOT


def _commands(parser, path=("rbft",)):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), helps.get(name), sub
                yield from _commands(sub, (*path, name))


def test_every_command_has_a_one_line_help_and_every_option_a_default():
    missing = []
    commands = list(_commands(build_parser()))
    assert len(commands) >= 20
    for path, summary, sub in commands:
        if not summary or "\n" in summary:
            missing.append(f"{' '.join(path)}: no one-line summary")
        for action in sub._actions:
            if action.dest == "help" or isinstance(action, argparse._SubParsersAction):
                continue
            text = action.help or ""
            if not text.strip():
                missing.append(f"{' '.join(path)} {action.option_strings or action.dest}: no help")
            elif action.option_strings and "default" not in text.lower():
                missing.append(f"{' '.join(path)} {action.option_strings}: help does not state the default")
    assert not missing, "\n".join(missing)


_HELP_ALL = """
import contextlib, io, json, sys
from rbft_core.cli.main import main
results = {}
for path in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*path, "--help"])
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    results[" ".join(path)] = [code, out.getvalue()]
print(json.dumps(results))
"""


def test_help_runs_for_every_command():
    """`rbft --help` as a user runs it, then every command's --help through the same entry point (``main``), in one
    process: a process per command cost a minute of imports."""
    top = subprocess.run([sys.executable, "-m", "rbft_core.cli.main", "--help"], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120)
    assert top.returncode == 0 and "run" in top.stdout and "pipeline" in top.stdout
    paths = [list(path[1:]) for path, _summary, _sub in _commands(build_parser())]
    out = subprocess.run([sys.executable, "-c", _HELP_ALL, json.dumps(paths)], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout.splitlines()[-1])
    assert len(results) == len(paths) >= 20
    for command, (code, text) in results.items():
        assert code == 0 and f"usage: rbft {command}" in " ".join(text.split()), (command, code, text[-500:])

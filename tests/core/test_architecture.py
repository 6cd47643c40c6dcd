"""The layering the architecture doc promises, checked on the source with ``ast`` (imports inside functions
count): no import circles, the library never reaches for the CLI or the job runner, no module borrows another
module's private names, and imports sit at the top unless a heavy optional dependency says why it waits."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rbft_core", "db", "ui")
# The library: everything except the CLI, the job runner / executor and the tabs' logic (the app layer).
APP_LAYER = ("rbft_core.cli", "rbft_core.jobs", "rbft_core.tabs")
FORBIDDEN_FOR_LIBRARY = ("rbft_core.cli", "rbft_core.jobs")
# Third-party packages that may be imported inside a function (they are heavy), with a reason comment.
HEAVY = {"torch", "transformers", "peft", "accelerate", "av", "moviepy", "imageio_ffmpeg", "matplotlib", "datasets",
         "pyarrow", "pandas", "tokenizers", "safetensors", "playwright", "psycopg", "scipy", "gradio",
         "gradio_client", "alembic", "fcntl"}


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    out["app"] = ROOT / "app.py"
    return out


MODULES = _modules()


def _resolve(module: str) -> str | None:
    """The project module an import names (``a.b.c`` -> the longest known prefix), or None if third-party."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in MODULES:
            return ".".join(parts[:i])
    return None


def _imports(path: Path):
    """(node, imported module, names, inside a function?) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node, in_func):
        for child in ast.iter_child_nodes(node):
            inner = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append((child, alias.name, [], in_func))
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                names = [a.name for a in child.names]
                for name in names:  # `from pkg import module` imports the module
                    if f"{child.module}.{name}" in MODULES:
                        found.append((child, f"{child.module}.{name}", [], in_func))
                found.append((child, child.module, names, in_func))
            visit(child, inner)

    visit(tree, False)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for _, module, _, _ in _imports(path):
            target = _resolve(module)
            if target and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def test_the_import_graph_has_no_circles_counting_imports_inside_functions():
    graph = _graph()
    assert len(graph) > 60  # the walk found the project
    assert _cycles(graph) == []


def test_no_library_module_imports_the_cli_or_the_job_runner():
    offenders = []
    for name, targets in _graph().items():
        if not name.startswith("rbft_core") or name.startswith(APP_LAYER):
            continue
        offenders += [f"{name} -> {t}" for t in targets if t.startswith(FORBIDDEN_FOR_LIBRARY)]
    assert not offenders, "\n".join(offenders)


def test_no_module_imports_or_reads_another_modules_private_names():
    offenders = []
    for name, path in MODULES.items():
        aliases = {}
        for node, module, names, _ in _imports(path):
            target = _resolve(module)
            if target is None:
                continue
            if isinstance(node, ast.ImportFrom) and module == target:
                offenders += [f"{name}: from {module} import {n}" for n in names
                              if n.startswith("_") and not n.startswith("__")]
            for alias in node.names:
                if f"{getattr(node, 'module', '') or ''}.{alias.name}".strip(".") == target or alias.name == target:
                    aliases[alias.asname or alias.name.split(".")[-1]] = target
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                offenders.append(f"{name}: {node.value.id}.{node.attr}")
    assert not offenders, "\n".join(offenders)


def test_imports_sit_at_the_top_except_heavy_dependencies_that_say_why():
    offenders = []
    for name, path in MODULES.items():
        lines = path.read_text().split("\n")
        for node, module, _, in_func in _imports(path):
            if not in_func:
                continue
            root = module.split(".")[0]
            text = " ".join(lines[node.lineno - 1 : node.end_lineno])
            if root not in HEAVY:
                offenders.append(f"{name}:{node.lineno} imports {module} inside a function")
            elif "#" not in text:
                offenders.append(f"{name}:{node.lineno} imports {module} inside a function with no reason comment")
    assert not offenders, "\n".join(offenders)


def test_modules_stay_readable_in_size():
    too_long = {name: n for name, path in MODULES.items()
                if (n := len(path.read_text().split("\n"))) > 450 and "migrations" not in name}
    assert too_long == {}

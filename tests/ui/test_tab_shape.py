"""Every tab has the same shape (issue #13, item 5), checked on the built app and on the source.

The shape:
- ``ui.app.TABS`` lists every ``ui/<name>_tab.py``; ``build_<name>_tab()`` returns a dataclass whose fields are Gradio
  components or nested dataclasses of them (forms), and the dataclass's ``attach(demo, db_url)`` wires its events.
- Every event goes through the one adapter (``ui.common.Events``), which applies ``ui_errors``.
- Handlers work by attribute, never by position. The rule, checked with ``ast`` on ``ui/*_tab.py``,
  ``ui/review_forms.py`` and ``ui/guide.py`` (every ui module with handlers):
  1. a handler is a module-level ``on_*`` function; its parameters are exactly ``(tab, db_url, values)`` plus
     keyword-only ones (fixed arguments bound by ``partial``, ``request``, ``evt``): no ``*args``/``**kwargs``;
  2. a parameter named ``values`` (the inputs, keyed by component) is only ever read as ``values[<expression>]``
     with an expression that is not a literal or a slice (``values[tab.dataset]``, never ``values[0]``), or passed
     whole to a helper; it is never iterated, unpacked, starred, measured or converted (``.values()``, ``list()``);
  3. every ``return`` of a handler, and of any function annotated ``-> Updates``, returns a dict display, a dict
     comprehension, a call or a name; never a tuple, a list or nothing. At run time the adapter refuses anything
     but a dict whose keys are the event's output components (tested below).
- The API order (what gradio_client callers pass and get back, by position) is pinned per endpoint, by attribute.
"""

from __future__ import annotations

import ast
import dataclasses
from functools import partial
from pathlib import Path

import gradio as gr
import pytest

from rbft_core.errors import DataError
from rbft_core.models.prompts import MAX_DIMENSIONS
from rbft_core.tabs.train import STAGE_FIELDS
from ui.app import TABS, build_tabs
from ui.common import Events, components
from ui.review_forms import RationaleForm
from ui.train_tab import StageForm

ROOT = Path(__file__).resolve().parents[2]
CHECKED = sorted((ROOT / "ui").glob("*_tab.py")) + [ROOT / "ui" / "review_forms.py", ROOT / "ui" / "guide.py"]


def _dotted(form, prefix: str = "") -> dict[int, str]:
    """id(component) -> ``stage1.lr``; asserts the shape on the way (components or nested dataclasses only)."""
    assert dataclasses.is_dataclass(form) and not isinstance(form, type), f"{prefix or form!r} is not a dataclass"
    out: dict[int, str] = {}
    for field in dataclasses.fields(form):
        value, name = getattr(form, field.name), prefix + field.name
        if dataclasses.is_dataclass(value):
            out.update(_dotted(value, name + "."))
        else:
            assert isinstance(value, gr.components.Component), f"{name} is {type(value).__name__}, not a component"
            assert id(value) not in out, f"{name} repeats another field's component"
            out[id(value)] = name
    return out


@pytest.fixture(scope="module")
def app():
    """(demo, [(tab, names)]) built as ``ui.app.build_app`` builds it (the database is never touched)."""
    with gr.Blocks() as demo:
        tabs = build_tabs(demo, "sqlite:////nonexistent/never-opened.db")
    return demo, [(tab, _dotted(tab)) for tab in tabs]


def test_every_tab_module_is_assembled_and_builds_a_dataclass_of_components(app):
    _demo, tabs = app
    modules = {p.stem for p in (ROOT / "ui").glob("*_tab.py")}
    assert {build.__module__.split(".")[-1] for _title, build in TABS} == modules
    for (_title, build), (tab, names) in zip(TABS, tabs):
        assert build.__name__ == f"build_{build.__module__.split('.')[-1]}"
        assert len(names) >= 5 and callable(type(tab).attach), type(tab).__name__


def test_forms_follow_the_names_they_mirror():
    assert tuple(f.name for f in dataclasses.fields(StageForm)) == STAGE_FIELDS  # LaunchRequest.stage1 keys
    # one box per dimension, as many as a dataset may define (an item shows its dataset's, hides the rest)
    assert tuple(f.name for f in dataclasses.fields(RationaleForm)) == tuple(f"d{i + 1}" for i in range(MAX_DIMENSIONS))


def test_every_event_goes_through_the_one_adapter(app):
    demo, _tabs = app
    assert len(demo.fns) > 55
    for fn in demo.fns.values():
        assert fn.fn.__module__ == "ui.common" and fn.fn.__code__.co_name == "event", fn.name


# ----------------------------------------------------------------------------------- the API order
# "shown" (a gr.State, not sent to API callers): when the item was shown, for its response's time per item; "dims"
# (a gr.State too): the open item's dimension names, in the order of the form's boxes
BOXES = [f"fields.d{i + 1}" for i in range(MAX_DIMENSIONS)]
ITEM = ["review_id", "version", "nav", "header", "video", "frames", "notice", "suggestion",
        *BOXES, "label", "status", "diff", "history", "place", "counts", "shown", "dims"]
CONTEXT = ["state", "review_id", "version", "nav", "reviewer", *BOXES, "label", "shown", "dims"]
ADJ_ITEM = ["review_id", "version", "picked", "header", "place", "video", "suggestion", "responses", "source",
            "dimension", *BOXES, "label", "history", "dims"]
LAUNCH = ["dataset", "model", "source", "share", "baselines", "hint", "targets", "merger",
          *[f"stage1.{k}" for k in STAGE_FIELDS], *[f"stage2.{k}" for k in STAGE_FIELDS]]
LIVE = ["job", "points", "timer", "progress", "loss", "log"]
RESULTS = ["runs", "compare", "confusion", "per_class_f1", "run_pick", "preds"]
DETAILS = ["per_label", "per_status", "report", "failed", "failed_page"]
BOX = ["box.x0", "box.y0", "box.x1", "box.y1", "box.t0", "box.t1"]
SELECTION = ["dataset", "fmt", "stage", "splits", "statuses", "edited", "labels", "include_excluded", "copy_videos",
             "name"]
API = {
    "datasets_refresh": ([], ["table"]),
    "datasets_create": (["create.name", "create.preset", "create.role", "create.task", "create.labels",
                         "create.criteria", "create.dimensions"], ["table", "selected"]),
    "datasets_select": (["selected"], DETAILS),
    "datasets_import": (["selected", "imports.source", "imports.manifest", "imports.fmt", "imports.workers"],
                        ["job", "timer", "progress"]),
    "datasets_generate": (["selected", "generate.model", "generate.frames", "generate.batch", "generate.split",
                           "generate.hint", "generate.nproc"], ["job", "timer", "progress"]),
    "datasets_failed_page": (["selected", "failed_page"], ["failed", "failed_page"]),
    "datasets_poll": (["job", "selected"], ["job", "timer", "progress", "table", "selected", *DETAILS]),
    "review_open": (["dataset", *[f"filters.{f}" for f in ("status", "label", "split", "edited", "parse_failed",
                                                          "search", "flag")]], ["state", *ITEM]),
    **{f"review_{name}": (CONTEXT, ITEM) for name in ("accept", "edit", "reject", "next", "prev", "skip")},
    "review_jump": ([*CONTEXT, "jump"], ITEM),
    "review_revert": (["review_id"], [*BOXES, "diff"]),
    "review_regenerate": (["review_id"], ["regen", "timer", "job"]),
    "review_regen_poll": (["regen", *CONTEXT], ["regen", "timer", "job", *ITEM]),
    "review_bulk_accept": (["state", "review_id", "nav", "reviewer"], ITEM),
    "review_bulk_exclude": (["state", "review_id", "nav", "reviewer"], ITEM),
    "adjudicate_open": (["dataset"], ["settings", "k", "assigned", *ADJ_ITEM]),
    "adjudicate_settings": (["dataset", "adjudicator", "k", "assigned"], ["settings", "k", "assigned", *ADJ_ITEM]),
    "adjudicate_use": (["review_id", "source", "dimension", *BOXES, "dims"], ["picked", *BOXES]),
    **{f"adjudicate_{a}": (["dataset", "review_id", "version", "picked", "adjudicator", *BOXES, "label", "dims"],
                           ADJ_ITEM) for a in ("accept", "reject")},
    **{f"adjudicate_{d}": (["dataset", "review_id"], ADJ_ITEM) for d in ("next", "prev")},
    "quality_show": (["dataset"], ["summary", "dimensions", "reviewers", "models", "agreement", "edits", "throughput"]),
    "train_check": (LAUNCH, ["readiness", "per_class"]),
    "train_command": (["action", *LAUNCH], ["command", "config"]),
    # the Stop button comes last: enabled only while a job runs, labelled with the job it stops (issue #18)
    **{f"train_start_{a}": (LAUNCH, [*LIVE, "command", "stop"]) for a in ("rbft", "direct_sft", "zero_shot")},
    "train_stop": (["job"], ["job", "timer"]),
    "train_poll": (["job", "points", "dataset"], [*LIVE, *RESULTS, "stop"]),
    "train_results": (["dataset"], RESULTS),
    "train_predictions": (["run_pick"], ["preds"]),
    "inspect_dataset": (["dataset"], ["run_a", "run_b", "video", "table", "chart"]),
    "inspect_video": (["video"], ["frame", "frame_state", "note"]),
    "inspect_attention": (["run_a", "run_b", "video", "query", "first", "last", "head_agg", "relative"],
                          ["overlay_a", "overlay_b", "attn_note"]),
    "inspect_mask": (["run_a", "run_b", "video", *BOX, "fill", "align"], ["original", "masked", "result"]),
    "inspect_save_box": (["dataset", "video", *BOX], ["note"]),
    "inspect_start": (["dataset", "run_a", "run_b", "source", "exp_fill", "k_random", "seed", "exp_align"],
                      ["job", "timer", "progress"]),
    "inspect_poll": (["job"], ["job", "timer", "progress", "table", "chart"]),
    "export_preview": (SELECTION, ["summary", "table"]),
    "export_zip": (SELECTION, ["job", "timer", "progress", "summary", "download"]),
    "export_poll": (["job"], ["job", "timer", "progress", "summary", "download"]),
}


def test_every_public_endpoint_keeps_its_documented_order(app):
    demo, tabs = app
    names = {k: v for _tab, n in tabs for k, v in n.items()}
    public = {fn.api_name: ([names[id(c)] for c in fn.inputs], [names[id(c)] for c in fn.outputs])
              for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert public.keys() == API.keys()
    for api_name, expected in API.items():
        assert public[api_name] == expected, api_name
    info = demo.get_api_info()["named_endpoints"]["/train_check"]  # the API names parameters by attribute
    assert [p["parameter_name"] for p in info["parameters"]][:3] == ["dataset", "model", "source"]
    assert info["parameters"][-1]["parameter_name"] == "stage2_max_steps"


# ---------------------------------------------------------------------------------- the adapter
@dataclasses.dataclass
class _Form:
    name: gr.Textbox
    count: gr.Number


@dataclasses.dataclass
class _Tab:
    form: _Form
    out: gr.Textbox
    flag: gr.Checkbox


@pytest.fixture
def toy():
    with gr.Blocks():
        tab = _Tab(form=_Form(name=gr.Textbox(), count=gr.Number()), out=gr.Textbox(), flag=gr.Checkbox())
    return tab, Events(tab, "sqlite://")


def test_adapter_gives_a_dict_by_component_and_orders_the_returned_dict(toy):
    tab, ev = toy
    seen = {}

    def on_x(t, db_url, values, *, suffix):
        seen.update(db_url=db_url, name=values[t.form.name], count=values[t.form.count], same_tab=t is tab)
        return {t.out: values[t.form.name] + suffix}

    event = ev.adapt(partial(on_x, suffix="!"), components(tab.form), [tab.flag, tab.out])
    flag, out = event(None, "ann", 3)
    assert seen == {"db_url": "sqlite://", "name": "ann", "count": 3, "same_tab": True}
    assert out == "ann!" and flag == gr.skip()  # an output the handler did not mention stays as it is
    assert ev.adapt(partial(on_x, suffix="?"), components(tab.form), [tab.out])(None, "bo", 1) == "bo?"  # one output


def test_adapter_refuses_positional_returns_and_names_stray_components(toy):
    tab, ev = toy
    with pytest.raises(TypeError, match="returned tuple; handlers return a dict"):
        ev.adapt(lambda t, db, values: ("a", "b"), [tab.out], [tab.out, tab.flag])(None, "x")
    with pytest.raises(TypeError, match="tab.flag, not among this event's outputs"):
        ev.adapt(lambda t, db, values: {t.flag: True}, [tab.out], [tab.out])(None, "x")
    with pytest.raises(KeyError, match="tab.form_count is not an input of this event"):
        ev.adapt(lambda t, db, values: {t.out: values[t.form.count]}, [tab.out], [tab.out])(None, "x")


def test_adapter_turns_rbft_errors_into_escaped_gradio_errors(toy):
    tab, ev = toy

    def on_fail(t, db_url, values):
        raise DataError("video <b>x</b> is missing; import it again")

    with pytest.raises(gr.Error, match="video &lt;b&gt;x&lt;/b&gt; is missing; import it again"):
        ev.adapt(on_fail, [], [tab.out])(None)


def test_adapter_passes_the_request_only_to_handlers_that_ask(toy):
    tab, ev = toy
    request = object()
    asked = ev.adapt(lambda t, db, values, *, request: {t.out: request}, [], [tab.out])
    assert asked(request) is request
    assert ev.adapt(lambda t, db, values: {t.out: "fine"}, [], [tab.out])(request) == "fine"


# ------------------------------------------------------------------------------------ the source
def _handlers(tree: ast.Module) -> list[ast.FunctionDef]:
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("on_")]


def _values_misuse(func: ast.FunctionDef) -> list[str]:
    """Uses of the ``values`` parameter other than ``values[<expr>]`` (expr not a literal) or ``helper(values)``."""
    if "values" not in [a.arg for a in func.args.args + func.args.kwonlyargs]:
        return []
    allowed: set[int] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "values":
            if not isinstance(node.slice, (ast.Constant, ast.Slice, ast.UnaryOp)):
                allowed.add(id(node.value))
        elif isinstance(node, ast.Call):
            allowed.update(id(a) for a in node.args if isinstance(a, ast.Name) and a.id == "values")
    return sorted(f"{func.name}:{n.lineno}" for n in ast.walk(func)
                  if isinstance(n, ast.Name) and n.id == "values" and id(n) not in allowed)


def _bad_returns(func: ast.FunctionDef) -> list[str]:
    ok = (ast.Dict, ast.DictComp, ast.Call, ast.Name)
    return [f"{func.name}:{n.lineno}" for n in ast.walk(func)
            if isinstance(n, ast.Return) and not isinstance(n.value, ok)]


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: p.name)
def test_handlers_work_by_attribute_never_by_position(path):
    tree = ast.parse(path.read_text())
    handlers = _handlers(tree)
    assert handlers or path.name == "review_forms.py", f"{path.name} has no on_* handlers"
    offenders = []
    for func in handlers:
        args = func.args
        if [a.arg for a in args.posonlyargs + args.args] != ["tab", "db_url", "values"] or args.vararg or args.kwarg:
            offenders.append(f"{func.name}: parameters must be (tab, db_url, values, *, keyword-only...)")
        offenders += [f"{where}: returns a tuple, a list or nothing" for where in _bad_returns(func)]
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    for func in functions:
        offenders += [f"{where}: reads `values` by position or as a whole" for where in _values_misuse(func)]
        if ast.unparse(func.returns or ast.Constant(None)) == "Updates" and func not in handlers:
            offenders += [f"{where}: returns a tuple, a list or nothing" for where in _bad_returns(func)]
    assert not offenders, "\n".join(offenders)


def test_the_source_rule_catches_positional_handlers():
    bad = ast.parse("def on_x(tab, db_url, *values):\n    a, b = values\n    return values[0], b\n")
    good = ast.parse("def on_x(tab, db_url, values):\n    return {tab.out: helper(values), tab.n: values[tab.a]}\n")
    func, fine = _handlers(bad)[0], _handlers(good)[0]
    assert func.args.vararg is not None and _bad_returns(func) == ["on_x:3"]
    func.args.args.append(ast.arg("values"))  # even as a plain parameter: unpacked and indexed by a literal
    assert _values_misuse(func) == ["on_x:2", "on_x:3"]
    assert _bad_returns(fine) == [] and _values_misuse(fine) == []

"""The first-run guide at the top of the app: the five steps (import, generate, review, train, inspect/export), each
with its current count and a button to the tab that does it, and a button to the next step not done yet.

It folds away once a run exists (its header brings it back) and is refreshed on every page load. The counts come
from ``rbft_core.tabs.guide`` (the database; no SQL here).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Optional

import gradio as gr

from rbft_core.tabs.guide import STEP_TABS, Guide, guide_state
from ui.common import Events, Updates, Values

__all__ = ["StepCard", "GuidePanel", "build_guide", "tab_id", "on_load", "on_go", "on_next", "OPEN_LABEL",
           "FOLDED_LABEL"]

OPEN_LABEL = "Getting started: five steps from your videos to a fine-tuned model"
FOLDED_LABEL = "Getting started guide (5 steps): click to show it again"


def tab_id(title: str) -> str:
    """The id of a tab in ``ui.app`` (what ``gr.Tabs(selected=...)`` takes)."""
    return title.lower()


@dataclass
class StepCard:
    text: gr.Markdown
    go: gr.Button


@dataclass
class GuidePanel:
    accordion: gr.Accordion
    next_line: gr.Markdown
    go_next: gr.Button
    refresh: gr.Button
    imports: StepCard
    generate: StepCard
    review: StepCard
    train: StepCard
    inspect: StepCard
    export: gr.Button  # step 5 has two tabs: Inspect (the card's button) and Export
    tabs: Optional[gr.Tabs] = None  # the app's tabs, given to ``attach`` (built after the guide, below it)

    def cards(self) -> dict[str, StepCard]:
        return {"import": self.imports, "generate": self.generate, "review": self.review, "train": self.train,
                "inspect": self.inspect}

    def shown(self) -> list:
        return [self.accordion, self.next_line, self.go_next, *[c.text for c in self.cards().values()]]

    def attach(self, demo: gr.Blocks, db_url: Optional[str], tabs: gr.Tabs) -> None:
        """Wire the guide; ``tabs`` is the app's ``gr.Tabs`` (its tabs' ids are ``tab_id(title)``)."""
        self.tabs = tabs
        ev = Events(self, db_url)
        ev.on(demo.load, on_load, [], self.shown(), api_visibility="private")
        ev.on(self.refresh.click, on_load, [], self.shown(), api_visibility="private")
        ev.on(self.go_next.click, on_next, [], [tabs], api_visibility="private")
        for key, card in self.cards().items():
            ev.on(card.go.click, partial(on_go, target=STEP_TABS[key][2]), [], [tabs], api_visibility="private")
        ev.on(self.export.click, partial(on_go, target="Export"), [], [tabs], api_visibility="private")


def _card_text(index: int, guide: Guide, key: str) -> str:
    step = guide.step(key)
    mark = " ✓" if step.done else (" ← next" if guide.next_step == key else "")
    return f"**{index}. {step.title}**{mark}  \n{step.what}  \n_{step.count}_"


def _next_line(guide: Guide) -> str:
    if guide.next_step is None:
        return "Every step has been done at least once: inspect your runs, export the curated data."
    step = guide.step(guide.next_step)
    return f"Next: **{step.title}**: {step.what} (the {step.tab} tab)."


# --------------------------------------------------------------------------------------- handlers
def on_load(tab: GuidePanel, db_url: Optional[str], values: Values) -> Updates:
    """The counts now; the guide is open until a run exists, then folded (its header opens it again)."""
    state = guide_state(db_url)
    texts = {card.text: _card_text(i, state, key) for i, (key, card) in enumerate(tab.cards().items(), 1)}
    following = STEP_TABS[state.next_step][2] if state.next_step else "Inspect"
    return {tab.accordion: gr.Accordion(open=not state.has_run, label=FOLDED_LABEL if state.has_run else OPEN_LABEL),
            tab.next_line: _next_line(state), tab.go_next: gr.Button(value=f"Go to the next step: {following}"),
            **texts}


def on_go(tab: GuidePanel, db_url: Optional[str], values: Values, *, target: str) -> Updates:
    """Select the tab titled ``target``."""
    return {tab.tabs: gr.Tabs(selected=tab_id(target))}


def on_next(tab: GuidePanel, db_url: Optional[str], values: Values) -> Updates:
    """The tab of the first step not done yet (Inspect once every step has been done)."""
    state = guide_state(db_url)
    return {tab.tabs: gr.Tabs(selected=tab_id(STEP_TABS[state.next_step][2] if state.next_step else "Inspect"))}


# ---------------------------------------------------------------------------------------- layout
def _card(key: str) -> StepCard:
    text = gr.Markdown(elem_id=f"guide-{key}")
    go = gr.Button(f"Open {STEP_TABS[key][2]}", size="sm", elem_id=f"guide-go-{key}")
    return StepCard(text=text, go=go)


def build_guide() -> GuidePanel:
    with gr.Accordion(OPEN_LABEL, open=True, elem_id="guide") as accordion:
        with gr.Row():
            next_line = gr.Markdown(elem_id="guide-next")
            go_next = gr.Button("Go to the next step", variant="primary", size="sm", elem_id="guide-go-next")
            refresh = gr.Button("Refresh counts", size="sm", elem_id="guide-refresh")
        with gr.Row(equal_height=True):
            cards = []
            for key in ("import", "generate", "review", "train", "inspect"):
                with gr.Column(min_width=160):
                    cards.append(_card(key))
                    if key == "inspect":
                        export = gr.Button("Open Export", size="sm", elem_id="guide-go-export")
            imports, generate, review, train, inspect = cards
    return GuidePanel(accordion=accordion, next_line=next_line, go_next=go_next, refresh=refresh, imports=imports,
                      generate=generate, review=review, train=train, inspect=inspect, export=export)

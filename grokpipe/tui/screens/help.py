"""The ``?`` screen: what the keys do and how to filter, built from the same lists as the bindings."""

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from ..rows import FILTER_KEYS
from ..widgets.pipeline_status import SYMBOLS
from .browse import KEYS

KEY_NAMES = {"space": "space", "slash": "/", "escape": "escape", "question_mark": "?"}


def help_text() -> str:
    from ..app import GrokpipeApp

    rows = [("`j` / `k`, arrows", "move in the run table"), ("click a header", "sort by that column (again: reverse)"),
            *((f"`{KEY_NAMES.get(key, key)}`", what) for key, _, _, what in KEYS + GrokpipeApp.KEYS),
            ("`ctrl+p`", "command palette: every command above")]
    states = ", ".join(f"{symbol} {state}" for state, symbol, _ in SYMBOLS)
    return "\n".join([
        "# grokpipe tui", "",
        "Browse the runs under the results directory and follow those still training: rows and plots",
        "update about once a second, and new shard files appear as the pipeline writes them.", "",
        "| key | does |", "| --- | --- |", *(f"| {key} | {what} |" for key, what in rows), "",
        f"Filter keys: `{' '.join(FILTER_KEYS)}`, with `= != < <= > >=`; a bare word matches experiment, task or "
        "shard names.", "", f"The header counts each experiment's shards: {states}.",
    ])


class HelpScreen(ModalScreen):
    BINDINGS = [("escape", "dismiss", "close"), ("q", "dismiss", "close"), ("question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(help_text())

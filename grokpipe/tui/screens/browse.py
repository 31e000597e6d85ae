"""The main screen: pipeline status, filter box, run table and the plot of the current runs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from ..widgets.pipeline_status import PipelineStatus
from ..widgets.run_plot import RunPlot
from ..widgets.run_table import RunTable

EMPTY = """\
[b]No results in {path} yet.[/b]

Produce them with the pipeline (from the project folder):

    snakemake --cores all figures

or train one shard by hand:

    grokpipe train --task add --p 59 --n-train 1400 --steps 3000 --lr 3e-3 \\
        --d-model 64 --n-heads 4 --d-head 16 --d-mlp 256 --out {path}/runs/by-hand/add.h5

Runs appear here while they train."""


class BrowseScreen(Screen):
    BINDINGS = [
        ("space", "toggle_selected", "select"),
        ("c", "clear_selection", "clear sel."),
        ("1", "view('loss')", "loss"),
        ("2", "view('accuracy')", "acc"),
        ("3", "view('norm')", "norm"),
        ("4", "view('circuits')", "circuits"),
        ("x", "toggle_log", "log x"),
        ("slash", "focus_filter", "filter"),
        ("escape", "focus_table", "table"),
    ]

    def compose(self) -> ComposeResult:
        yield PipelineStatus("reading results…", id="pipeline")
        yield Input(placeholder="filter: exp=ungrok wd=1 D<600  (/ to focus, enter to apply)", id="filter")
        yield Static("", id="empty")
        with Horizontal(id="main"):
            yield RunTable(id="runs")
            with Vertical(id="side"):
                yield RunPlot(id="plot")
                yield Static("", id="details")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RunTable).focus()

    # ---- actions

    def action_toggle_selected(self) -> None:
        self.query_one(RunTable).toggle_selected()
        self.app.update_plot()

    def action_clear_selection(self) -> None:
        table = self.query_one(RunTable)
        for key in list(table.selected):
            table.selected.discard(key)
            if key in table.rows:
                table.update_cell(key, "selected", "")
        self.app.update_plot()

    def action_view(self, view: str) -> None:
        plot = self.query_one(RunPlot)
        plot.view = view
        plot.redraw()

    def action_toggle_log(self) -> None:
        plot = self.query_one(RunPlot)
        plot.log_x = not plot.log_x
        plot.redraw()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one(RunTable).focus()

    # ---- events

    def on_input_changed(self, event: Input.Changed) -> None:
        self.app.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.app.set_filter(event.value, report_errors=True)
        self.action_focus_table()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.app.update_plot()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        table = self.query_one(RunTable)
        table.sort_by(event.column_key.value)
        self.app.refresh_table()

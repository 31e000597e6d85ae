"""The main screen: pipeline status, filter box, run table and the plot of the current runs.

The screen owns what it shows: a scanner of the results directory (grokpipe.monitor), the rows,
the filter. A worker scans off the UI thread and posts :class:`ShardsScanned`; the screen handles
it with ``@on``. The keys, the help screen and the command palette derive from :data:`KEYS` and
the plot's views (grokpipe.tui.views).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from ...monitor import ResultsScanner, ShardStatus
from ...provenance import device_label, trainer_label
from ..rows import FilterError, parse_filter, row_values, run_key
from ..views import VIEW_BY_NAME, VIEWS
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

# (key, action, footer label, what it does): the screen's bindings, the help table and the palette
KEYS = (
    ("space", "toggle_selected", "select", "select the run for overlay (plot several runs at once)"),
    ("c", "clear_selection", "clear sel.", "clear the selection"),
    *((v.key, f"view('{v.name}')", v.name, f"plot {v.description}") for v in VIEWS),
    ("x", "toggle_log", "log x", "log / linear x axis"),
    ("s", "toggle_smooth", "smooth", "smooth the curves (exponential moving average)"),
    ("w", "toggle_wall", "epochs/time", "x axis: epochs or training wall time"),
    ("p", "save_plot", "save plot", "save the plot as a PNG (matplotlib, the same data) under results/plots"),
    ("slash", "focus_filter", "filter", "filter, e.g. `exp=ungrok wd=1 D<600 test_acc<0.5`"),
    ("escape", "focus_table", "table", "back to the table"),
)


class ShardsScanned(Message):
    def __init__(self, shards: list[ShardStatus]):
        super().__init__()
        self.shards = shards


class PlanLoaded(Message):
    def __init__(self, planned: dict[str, int]):
        super().__init__()
        self.planned = planned


class BrowseScreen(Screen):
    BINDINGS = [Binding(key, action, label) for key, action, label, _ in KEYS]

    def __init__(self, results_dir: Path, config: Path | None, refresh_seconds: float):
        super().__init__()
        self.results_dir = results_dir
        self.config_path = config
        self.refresh_seconds = refresh_seconds
        self.scanner = ResultsScanner(results_dir)
        self.shards: list[ShardStatus] = []
        self.values: dict[str, dict] = {}
        self.runs: dict = {}
        self.conditions = []
        self.planned: dict[str, int] | None = None
        self.shown_details = ""
        self.rows_of: dict = {}  # shard path -> ((version, state), [(key, row values, run)])

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
        self.load_plan()
        self.rescan()
        self.set_interval(self.refresh_seconds, self.rescan)

    # ---- workers: all file I/O happens here, off the UI thread

    @work(thread=True, exclusive=True, group="scan")
    def rescan(self) -> None:
        self.post_message(ShardsScanned(self.scanner.scan()))

    @work(thread=True, group="plan")
    def load_plan(self) -> None:
        """Planned shard counts per experiment, when the project's config is at hand (for 'pending')."""
        path = self.config_path or self.results_dir.resolve().parent / "config.yaml"
        if not path.is_file():
            return
        from ...config import load_checked_config, load_plan
        from ...errors import GrokpipeError

        try:
            plan = load_plan(load_checked_config(path))
        except GrokpipeError:
            return  # not a valid grokpipe config: pending counts are simply not shown
        counts: dict[str, int] = {}
        for experiment, _ in plan.jobs:
            counts[experiment] = counts.get(experiment, 0) + 1
        self.post_message(PlanLoaded(counts))

    # ---- messages -> widgets

    @on(PlanLoaded)
    def show_plan(self, message: PlanLoaded) -> None:
        self.planned = message.planned
        self.query_one(PipelineStatus).show(self.shards, self.planned)

    @on(ShardsScanned)
    def show_scan(self, message: ShardsScanned) -> None:
        self.shards = message.shards
        values, runs = {}, {}
        for shard in self.shards:
            cached = self.rows_of.get(shard.path)
            if cached is None or cached[0] != (shard.version, shard.state):  # rows of shards read again only
                rows = [(run_key(shard, None), row_values(shard, None), None)] if shard.state == "unreadable" else \
                    [(run_key(shard, run), row_values(shard, run), run) for run in shard.runs]
                cached = self.rows_of[shard.path] = ((shard.version, shard.state), rows)
            for key, row, run in cached[1]:
                values[key] = row
                if run is not None:
                    runs[key] = run
        order = sorted(values, key=lambda k: tuple(values[k][c] for c in ("experiment", "task", "n_train",
                                                                            "weight_decay", "seed", "shard")))
        self.values, self.runs = {k: values[k] for k in order}, runs
        self.query_one(PipelineStatus).show(self.shards, self.planned)
        empty = self.query_one("#empty", Static)
        if empty.display != (not self.shards):
            empty.display = not self.shards
            empty.update(EMPTY.format(path=self.results_dir) if not self.shards else "")
        self.refresh_table()
        self.update_plot()

    def refresh_table(self) -> None:
        visible = [k for k, row in self.values.items() if all(c.holds(row) for c in self.conditions)]
        self.query_one(RunTable).show(self.values, visible)

    def set_filter(self, text: str, report_errors: bool = False) -> None:
        """Apply a filter; one that does not parse (yet, while typing) leaves the last good one applied."""
        try:
            self.conditions = parse_filter(text)
        except FilterError as e:
            if report_errors:
                self.notify(str(e), severity="error", timeout=4)
            return
        self.refresh_table()

    def update_plot(self) -> None:
        table = self.query_one(RunTable)
        keys = [k for k in table.keys if k in table.selected]  # selected runs, in table order
        current = table.current_key
        if current and current not in keys:
            keys.insert(0, current)
        chosen = [(f"D={self.values[k]['n_train']} wd={self.values[k]['weight_decay']:g} s{self.values[k]['seed']}",
                   self.runs[k]) for k in keys if k in self.runs]
        shown = {self.values[k]["shard"] for k in keys}
        self.scanner.follow = {s.path for s in self.shards if s.name in shown}  # plotted: refreshed every scan
        self.query_one(RunPlot).show(chosen)
        details = self.details(current)
        if details != self.shown_details:  # only on change; its height is fixed, so no layout pass
            self.shown_details = details
            self.query_one("#details", Static).update(details, layout=False)

    def details(self, key: str | None) -> str:
        if not key or key not in self.values:
            return ""
        row = self.values[key]
        shard = next((s for s in self.shards if s.name == row["shard"]), None)
        if shard and shard.error:
            return f"{key}  [red]{shard.error}[/]"
        run = self.runs.get(key)
        made = ""
        if run is not None and run.provenance:
            made = f"\n{trainer_label(run.provenance)} on {device_label(run.provenance)}"
        return f"{key}  state {row['state']}  step {row['progress']}{made}"

    # ---- actions

    def action_toggle_selected(self) -> None:
        self.query_one(RunTable).toggle_selected()
        self.update_plot()

    def action_clear_selection(self) -> None:
        self.query_one(RunTable).clear_selection()
        self.update_plot()

    def _plot_setting(self, name: str, value) -> None:
        plot = self.query_one(RunPlot)
        setattr(plot, name, value)
        plot.redraw()

    def action_view(self, view: str) -> None:
        self._plot_setting("view", view)

    def action_toggle_log(self) -> None:
        self._plot_setting("log_x", not self.query_one(RunPlot).log_x)

    def action_toggle_smooth(self) -> None:
        self._plot_setting("smoothed", not self.query_one(RunPlot).smoothed)

    def action_toggle_wall(self) -> None:
        self._plot_setting("wall_time", not self.query_one(RunPlot).wall_time)

    def action_save_plot(self) -> None:
        plot = self.query_one(RunPlot)
        if not plot.series():
            self.notify("nothing to save: the plot is empty", severity="warning")
            return
        self.save_plot(plot.view, plot.series(), plot.x_label(), plot.log_x, VIEW_BY_NAME[plot.view].log_y)

    @work(thread=True, group="save")
    def save_plot(self, view: str, series, x_label: str, log_x: bool, log_y: bool) -> None:
        from ..save_plot import save_plot

        path = self.results_dir / "plots" / f"{view}-{time.strftime('%Y%m%d-%H%M%S')}.png"
        try:
            save_plot(path, view, series, x_label, log_x, log_y)
        except Exception as e:  # noqa: BLE001 - reported to the user, never a crash of the app
            self.app.call_from_thread(self.notify, f"could not save the plot: {e}", severity="error")
            return
        self.app.call_from_thread(self.notify, f"saved {path}")

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one(RunTable).focus()

    def commands(self) -> list[tuple[str, str, object]]:
        """(name, help, callable) for the command palette, from the same list as the keys."""
        return [(label.capitalize(), what, partial(self.app.call_later, self.run_action, action))
                for _, action, label, what in KEYS if action != "focus_table"]

    # ---- events

    def on_input_changed(self, event: Input.Changed) -> None:
        self.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.set_filter(event.value, report_errors=True)
        self.action_focus_table()

    @on(RunTable.Highlighted)
    def follow_cursor(self) -> None:
        self.update_plot()

    @on(RunTable.HeaderClicked)
    def sort(self, message: RunTable.HeaderClicked) -> None:
        self.query_one(RunTable).sort_by(message.column)
        self.refresh_table()

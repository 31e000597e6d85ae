"""The grokpipe Textual app: scans the results directory in a worker once a second, keeps the
run table and plot in step with it, and offers figures, claims and help screens."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from textual import work
from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.widgets import Static

from ..store import ShardStatus, scan_results
from .rows import FilterError, parse_filter, row_values, run_key
from .screens.browse import EMPTY, BrowseScreen
from .screens.figures import FiguresScreen
from .screens.help import HelpScreen
from .widgets.pipeline_status import PipelineStatus
from .widgets.run_plot import RunPlot
from .widgets.run_table import RunTable

REFRESH_SECONDS = 1.0


class GrokpipeCommands(Provider):
    """The app's own commands in the ctrl+p palette."""

    COMMANDS = (
        ("Figures and claims", "show the rendered figures and the claims report", "show_figures"),
        ("Plot loss", "train and test loss of the current runs", "view('loss')"),
        ("Plot accuracy", "train and test accuracy", "view('accuracy')"),
        ("Plot parameter norm", "parameter norm over training", "view('norm')"),
        ("Plot C_gen / C_mem logits", "Appendix B's circuit logits", "view('circuits')"),
        ("Toggle log x", "log or linear epochs axis", "toggle_log"),
        ("Clear selection", "plot only the current run", "clear_selection"),
        ("Refresh now", "re-read every results file", "rescan"),
        ("Help", "keys and the filter language", "help"),
    )

    async def discover(self) -> Hits:
        for name, help_text, action in self.COMMANDS:
            yield DiscoveryHit(name, partial(self.app.run_command, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, action in self.COMMANDS:
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), partial(self.app.run_command, action), help=help_text)


class GrokpipeApp(App):
    TITLE = "grokpipe"
    CSS_PATH = "grokpipe.tcss"
    COMMANDS = App.COMMANDS | {GrokpipeCommands}
    BINDINGS = [
        ("q", "quit", "quit"),
        ("question_mark", "help", "help"),
        ("f", "show_figures", "figures"),
        ("r", "rescan", "refresh"),
    ]

    def __init__(self, results_dir: Path, config: Path | None = None, refresh_seconds: float = REFRESH_SECONDS):
        super().__init__()
        self.results_dir = Path(results_dir)
        self.config_path = config
        self.refresh_seconds = refresh_seconds
        self.cache: dict = {}
        self.shards: list[ShardStatus] = []
        self.values: dict[str, dict] = {}
        self.runs: dict = {}
        self.conditions = []
        self.planned: dict[str, int] | None = None

    def on_mount(self) -> None:
        self.push_screen(BrowseScreen())
        self.sub_title = str(self.results_dir)
        self.load_plan()
        self.rescan()
        self.set_interval(self.refresh_seconds, self.rescan)

    # ---- workers: all file I/O happens here, off the UI thread

    @work(thread=True, exclusive=True, group="scan")
    def rescan(self) -> None:
        shards = scan_results(self.results_dir, self.cache)
        self.call_from_thread(self.apply_scan, shards)

    @work(thread=True, group="plan")
    def load_plan(self) -> None:
        """Planned shard counts per experiment, when the project's config is at hand (for 'pending')."""
        path = self.config_path or self.results_dir.resolve().parent / "config.yaml"
        if not path.is_file():
            return
        from ..config import load_checked_config, load_plan
        from ..errors import GrokpipeError

        try:
            plan = load_plan(load_checked_config(path))
        except GrokpipeError:
            return  # not a valid grokpipe config: pending counts are simply not shown
        counts: dict[str, int] = {}
        for experiment, _ in plan.jobs:
            counts[experiment] = counts.get(experiment, 0) + 1
        self.planned = counts

    # ---- state -> widgets

    def apply_scan(self, shards: list[ShardStatus]) -> None:
        self.shards = shards
        values, runs = {}, {}
        for shard in shards:
            if shard.state == "unreadable":  # one row for the file, saying so
                values[run_key(shard, None)] = row_values(shard, None)
                continue
            for run in shard.runs:
                key = run_key(shard, run)
                values[key], runs[key] = row_values(shard, run), run
        order = sorted(values, key=lambda k: tuple(values[k][c] for c in ("experiment", "task", "n_train",
                                                                            "weight_decay", "seed", "shard")))
        self.values, self.runs = {k: values[k] for k in order}, runs
        if not isinstance(self.screen, BrowseScreen):
            return
        self.screen.query_one(PipelineStatus).show(shards, self.planned)
        empty = self.screen.query_one("#empty", Static)
        empty.display = not shards
        empty.update(EMPTY.format(path=self.results_dir) if not shards else "")
        self.refresh_table()
        self.update_plot()

    def refresh_table(self) -> None:
        visible = [k for k, row in self.values.items() if all(c.holds(row) for c in self.conditions)]
        self.screen.query_one(RunTable).show(self.values, visible)

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
        if not isinstance(self.screen, BrowseScreen):
            return
        table = self.screen.query_one(RunTable)
        keys = [k.value for k in table.rows if k.value in table.selected]  # selected runs, in table order
        current = table.current_key
        if current and current not in keys:
            keys.insert(0, current)
        chosen = [(f"D={self.values[k]['n_train']} wd={self.values[k]['weight_decay']:g} s{self.values[k]['seed']}",
                   self.runs[k]) for k in keys if k in self.runs]
        self.screen.query_one(RunPlot).show(chosen)
        details = self.screen.query_one("#details", Static)
        if current and current in self.values:
            row = self.values[current]
            shard = next((s for s in self.shards if s.name == row["shard"]), None)
            note = f"  [red]{shard.error}[/]" if shard and shard.error else ""
            details.update(f"{current}  state {row['state']}  step {row['progress']}{note}")
        else:
            details.update("")

    # ---- actions

    def run_command(self, action: str) -> None:
        if action.startswith("view(") or action in ("toggle_log", "clear_selection"):
            self.screen.run_action(action)
        else:
            self.run_action(action)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_show_figures(self) -> None:
        self.push_screen(FiguresScreen(self.results_dir))

    def action_rescan(self) -> None:
        self.rescan()


def run(results_dir: Path, config: Path | None = None) -> None:
    GrokpipeApp(results_dir, config).run()

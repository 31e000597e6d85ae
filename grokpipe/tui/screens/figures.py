"""The ``f`` screen: rendered figures (path, when made) and the claims report."""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Markdown


class FiguresScreen(Screen):
    BINDINGS = [("escape", "app.pop_screen", "back"), ("r", "reload", "reload")]

    def __init__(self, results_dir: Path):
        super().__init__()
        self.results_dir = results_dir

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield DataTable(id="figure-list", cursor_type="row")
            yield Markdown("reading the claims report…", id="claims")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#figure-list", DataTable)
        table.add_columns("figure", "made")
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        figures = sorted((self.results_dir / "figures").glob("*.png"))
        listing = [(str(p.relative_to(self.results_dir.parent) if self.results_dir.parent != Path() else p),
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(p.stat().st_mtime))) for p in figures]
        claims = self.results_dir / "claims.md"
        text = claims.read_text() if claims.is_file() else (
            "# No claims report yet\n\nRun `snakemake --cores all figures`: it writes `results/claims.md`.")
        self.app.call_from_thread(self.show, listing, text)

    def show(self, listing, text: str) -> None:
        table = self.query_one("#figure-list", DataTable)
        table.clear()
        for path, made in listing or [("no figures yet: run `snakemake --cores all figures`", "")]:
            table.add_row(path, made)
        self.query_one("#claims", Markdown).update(text)

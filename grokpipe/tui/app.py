"""The grokpipe Textual app: a browse screen that follows the results directory, and figures,
claims and help screens. The screens own their state; the app only routes keys and commands."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider

from .screens.browse import BrowseScreen
from .screens.figures import FiguresScreen
from .screens.help import HelpScreen

REFRESH_SECONDS = 1.0


class GrokpipeCommands(Provider):
    """The app's and the browse screen's commands in the ctrl+p palette, as callables."""

    def commands(self) -> list[tuple[str, str, object]]:
        screen = next((s for s in self.app.screen_stack if isinstance(s, BrowseScreen)), None)
        return (screen.commands() if screen else []) + self.app.commands()

    async def discover(self) -> Hits:
        for name, help_text, callback in self.commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


class GrokpipeApp(App):
    TITLE = "grokpipe"
    CSS_PATH = "grokpipe.tcss"
    COMMANDS = App.COMMANDS | {GrokpipeCommands}
    # (key, action, label, what it does): bindings, the help table and the palette
    KEYS = (
        ("f", "show_figures", "figures", "figures and the claims report"),
        ("r", "rescan", "refresh", "re-read every results file now"),
        ("question_mark", "help", "help", "this help; `escape` closes it"),
        ("q", "quit", "quit", "quit"),
    )
    BINDINGS = [(key, action, label) for key, action, label, _ in KEYS]

    def __init__(self, results_dir: Path, config: Path | None = None, refresh_seconds: float = REFRESH_SECONDS):
        super().__init__()
        self.results_dir = Path(results_dir)
        self.config_path = config
        self.refresh_seconds = refresh_seconds

    def on_mount(self) -> None:
        self.sub_title = str(self.results_dir)
        self.push_screen(BrowseScreen(self.results_dir, self.config_path, self.refresh_seconds))

    def commands(self) -> list[tuple[str, str, object]]:
        return [(label.capitalize(), what, getattr(self, f"action_{action}")) for _, action, label, what in self.KEYS
                if action != "quit"]

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_show_figures(self) -> None:
        self.push_screen(FiguresScreen(self.results_dir))

    def action_rescan(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, BrowseScreen):
                screen.rescan()


def run(results_dir: Path, config: Path | None = None) -> None:
    GrokpipeApp(results_dir, config).run()

"""The ``?`` screen: what the keys do and how to filter."""

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from ..rows import FILTER_KEYS

HELP = """\
# grokpipe tui

Browse the runs under the results directory and follow those still training: rows and plots
update about once a second, and new shard files appear as the pipeline writes them.

| key | does |
| --- | --- |
| `j` / `k`, arrows | move in the run table |
| `space` | select the run for overlay (plot several runs at once) |
| `c` | clear the selection |
| `1` `2` `3` `4` | plot loss, accuracy, parameter norm, C_gen / C_mem logits |
| `x` | log / linear epochs axis |
| `/` | filter, e.g. `exp=ungrok wd=1 D<600 test_acc<0.5` |
| click a header | sort by that column (again: reverse) |
| `f` | figures and the claims report |
| `r` | re-read every file now |
| `ctrl+p` | command palette |
| `?` | this help; `escape` closes it |
| `q`, `ctrl+q` | quit |

Filter keys: `{keys}`, with `= != < <= > >=`; a bare word matches experiment, task or shard names.
""".format(keys=" ".join(FILTER_KEYS))


class HelpScreen(ModalScreen):
    BINDINGS = [("escape", "dismiss", "close"), ("q", "dismiss", "close"), ("question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)

"""Fig 4: final test accuracy after ungrokking against D', per weight decay."""

from ._common import one_panel
from ._panels import transition_panel


def draw(store):
    fig, ax, runs = one_panel(store, "ungrok", figsize=(5.5, 3.8))
    if runs:
        transition_panel(ax, runs, title=f"{runs[0].hparams['task']} mod {runs[0].hparams['p']}: ungrokking")
    return fig

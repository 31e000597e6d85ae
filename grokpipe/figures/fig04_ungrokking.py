"""Fig 4: final test accuracy after ungrokking against D', per weight decay."""

import matplotlib.pyplot as plt

from ._common import missing
from ._panels import transition_panel


def draw(store):
    fig, ax = plt.subplots(figsize=(5.5, 3.8), constrained_layout=True)
    runs = store.runs("ungrok")
    if runs:
        transition_panel(ax, runs, title=f"{runs[0].hparams['task']} mod {runs[0].hparams['p']}: ungrokking")
    else:
        missing(ax, "ungrok runs")
    return fig

"""Fig 7: many ungrokking runs' test accuracy over training, coloured by D'."""

import matplotlib.pyplot as plt

from ._common import missing
from ._panels import coloured_curves


def draw(store):
    fig, ax = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
    runs = store.runs("ungrok")
    if not runs:
        missing(ax, "ungrok runs")
        return fig
    wds = sorted({r.hparams["weight_decay"] for r in runs})
    wd = min(wds, key=lambda w: abs(w - 1.0))
    chosen = [r for r in runs if r.hparams["weight_decay"] == wd]
    coloured_curves(fig, ax, chosen, [r.hparams["n_train"] for r in chosen], "reduced dataset size D'", log_colour=True)
    ax.set_title(f"ungrokking runs at weight decay {wd:g} ({len(chosen)} runs)")
    return fig

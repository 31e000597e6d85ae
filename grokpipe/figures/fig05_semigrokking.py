"""Fig 5: every semi-grokking run's test accuracy, coloured by its final accuracy."""

import matplotlib.pyplot as plt

from ..analysis import final
from ._common import missing
from ._panels import coloured_curves


def draw(store):
    fig, ax = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
    runs = store.runs("semigrok")
    if not runs:
        missing(ax, "semigrok runs")
        return fig
    coloured_curves(fig, ax, runs, [final(r, "test_acc") for r in runs], "final test accuracy")
    sizes = sorted({r.hparams["n_train"] for r in runs})
    ax.set_title(f"semi-grokking sweep: {len(runs)} runs, D in {sizes[0]}..{sizes[-1]}")
    return fig

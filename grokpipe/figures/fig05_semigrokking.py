"""Fig 5: every semi-grokking run's test accuracy, coloured by its final accuracy."""

from ..analysis import final
from ._common import one_panel
from ._panels import coloured_curves


def draw(store):
    fig, ax, runs = one_panel(store, "semigrok")
    if runs:
        coloured_curves(fig, ax, runs, [final(r, "test_acc") for r in runs], "final test accuracy")
        sizes = sorted({r.hparams["n_train"] for r in runs})
        ax.set_title(f"semi-grokking sweep: {len(runs)} runs, D in {sizes[0]}..{sizes[-1]}")
    return fig

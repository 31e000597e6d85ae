"""Fig 7: many ungrokking runs' test accuracy over training, coloured by D'."""

from ._common import one_panel
from ._panels import coloured_curves


def draw(store):
    fig, ax, runs = one_panel(store, "ungrok")
    if runs:
        wd = min({r.hparams["weight_decay"] for r in runs}, key=lambda w: abs(w - 1.0))
        chosen = [r for r in runs if r.hparams["weight_decay"] == wd]
        coloured_curves(fig, ax, chosen, [r.hparams["n_train"] for r in chosen], "reduced dataset size D'",
                        log_colour=True)
        ax.set_title(f"ungrokking runs at weight decay {wd:g} ({len(chosen)} runs)")
    return fig

"""Fig 7: many ungrokking runs' test accuracy over training, coloured by D'."""

import matplotlib.pyplot as plt

from ._common import colour_scale, missing


def draw(store):
    fig, ax = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
    runs = store.runs("ungrok")
    if not runs:
        missing(ax, "ungrok runs")
        return fig
    wds = sorted({r.params["weight_decay"] for r in runs})
    wd = min(wds, key=lambda w: abs(w - 1.0))
    chosen = [r for r in runs if r.params["weight_decay"] == wd]
    mapper = colour_scale([r.params["n_train"] for r in chosen], log=True)
    for r in chosen:
        ax.plot(r.eval_step, r.curves["test_acc"], lw=0.9, color=mapper.to_rgba(r.params["n_train"]))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epochs")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"ungrokking runs at weight decay {wd:g} ({len(chosen)} runs)")
    fig.colorbar(mapper, ax=ax, label="reduced dataset size D'")
    return fig

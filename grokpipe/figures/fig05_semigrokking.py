"""Fig 5: every semi-grokking run's test accuracy, coloured by its final accuracy."""

import matplotlib.pyplot as plt

from ..analysis import final
from ._common import colour_scale, missing


def draw(store):
    fig, ax = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
    runs = store.runs("semigrok")
    if not runs:
        missing(ax, "semigrok runs")
        return fig
    finals = [final(r, "test_acc") for r in runs]
    mapper = colour_scale([0, 1])
    for r, f in sorted(zip(runs, finals), key=lambda x: x[1]):
        ax.plot(r.eval_step, r.curves["test_acc"], lw=0.8, color=mapper.to_rgba(f))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epochs")
    ax.set_ylabel("test accuracy")
    sizes = sorted({r.params["n_train"] for r in runs})
    ax.set_title(f"semi-grokking sweep: {len(runs)} runs, D in {sizes[0]}..{sizes[-1]}")
    fig.colorbar(mapper, ax=ax, label="final test accuracy")
    return fig

"""Fig 10: logit ratio o_t / o_m and test accuracy at convergence against D, coloured by parameter norm."""

import matplotlib.pyplot as plt
import numpy as np

from ..analysis import final, geometric_buckets
from ._common import colour_scale, log_scale, missing


def _by_norm_bucket(ax, rows, mapper, y_index):
    norms = rows[:, 1]
    edges = geometric_buckets(norms, 4)
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = rows[(norms >= lo) & (norms < hi)]
        sizes = np.unique(inside[:, 0])
        if len(sizes) >= 2:
            y = [inside[inside[:, 0] == d, y_index].mean() for d in sizes]
            ax.plot(sizes, y, "-", lw=1, color=mapper.to_rgba(np.sqrt(lo * hi)))


def draw(store):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    runs = [r for r in store.runs("ungrok") if "gen_logit" in r.curves]
    if not runs:
        for ax in axes:
            missing(ax, "ungrok runs with circuit metrics")
        return fig
    rows = np.array([(r.hparams["n_train"], final(r, "param_norm"), final(r, "gen_logit") / final(r, "mem_logit_train"),
                      final(r, "test_acc")) for r in runs])
    mapper = colour_scale(rows[:, 1], cmap="viridis", log=True)
    positive = rows[rows[:, 2] > 0]
    axes[0].scatter(positive[:, 0], positive[:, 2], c=mapper.to_rgba(positive[:, 1]), s=14)
    _by_norm_bucket(axes[0], positive, mapper, 2)
    log_scale(axes[0], "x")
    log_scale(axes[0], "y")
    axes[0].set_xlabel("dataset size")
    axes[0].set_ylabel("o_t / o_m")
    dropped = len(rows) - len(positive)
    axes[0].set_title("(a) logit ratio" + (f" ({dropped} runs with o_m <= 0 not shown)" if dropped else ""))
    axes[1].scatter(rows[:, 0], rows[:, 3], c=mapper.to_rgba(rows[:, 1]), s=14)
    _by_norm_bucket(axes[1], rows, mapper, 3)
    log_scale(axes[1], "x")
    axes[1].set_ylim(-0.03, 1.03)
    axes[1].set_xlabel("dataset size")
    axes[1].set_ylabel("test accuracy")
    axes[1].set_title("(b) test accuracy")
    fig.colorbar(mapper, ax=axes, label="parameter norm")
    return fig

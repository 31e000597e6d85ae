"""Theorem D.4: numerically optimal circuit weights against the theorem's prediction."""

import matplotlib.pyplot as plt
import numpy as np

from ._common import missing


def draw(store):
    sim = store.simulation
    cases = sim["theorem_d4"] if sim else []
    fig, axes = plt.subplots(1, max(len(cases), 1), figsize=(4 * max(len(cases), 1), 3.4), constrained_layout=True)
    axes = np.atleast_1d(axes)
    if not cases:
        missing(axes[0], "simulation")
        return fig
    for ax, case in zip(axes, cases):
        x = np.arange(len(case["P"]))
        ax.bar(x - 0.2, case["numeric_share"], width=0.4, label="numerical optimum of Eq. 6")
        ax.bar(x + 0.2, case["predicted_share"], width=0.4, label="Theorem D.4")
        ax.set_xticks(x, [f"P={p:g}" for p in case["P"]])
        ax.set_ylabel("share of total weight")
        ax.set_title(case["name"])
        ax.legend()
    return fig

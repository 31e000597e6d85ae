"""Fig 3: efficiency of C_mem (random labels) and C_gen (large D, > 95% trigonometric)."""

import matplotlib.pyplot as plt
import numpy as np

from ..analysis import TRIGONOMETRIC, efficiency_triples, geometric_buckets, split_converged, trigonometric_only
from ._common import colour_scale, log_scale, missing


def _scatter(ax, fig, t, title):
    mapper = colour_scale(t[:, 2], log=True)
    ax.scatter(t[:, 1], t[:, 0], c=mapper.to_rgba(t[:, 2]), s=18)
    edges = geometric_buckets(t[:, 0])
    for level in np.sqrt(edges[:-1] * edges[1:]):
        ax.axhline(level, ls=":", lw=0.7, color="0.5")
    log_scale(ax, "x")
    log_scale(ax, "y")
    ax.set_xlabel("parameter norm")
    ax.set_ylabel("correct logit")
    fig.colorbar(mapper, ax=ax, label="dataset size")
    ax.set_title(title)


def _isologit(ax, fig, t, title):
    edges = geometric_buckets(t[:, 0])
    centres = np.sqrt(edges[:-1] * edges[1:])
    mapper = colour_scale(centres, cmap="cividis", log=True)
    for lo, hi, c in zip(edges[:-1], edges[1:], centres):
        inside = t[(t[:, 0] >= lo) & (t[:, 0] < hi)]
        sizes = np.unique(inside[:, 2])
        if len(sizes) < 2:
            continue
        norms = [inside[inside[:, 2] == d, 1].mean() for d in sizes]
        ax.plot(sizes, norms, "-o", ms=3, color=mapper.to_rgba(c))
    log_scale(ax, "x")
    log_scale(ax, "y")
    ax.set_xlabel("dataset size")
    ax.set_ylabel("parameter norm")
    fig.colorbar(mapper, ax=ax, label="correct logit (bucket)")
    ax.set_title(title)


def draw(store):
    """Converged runs only (as P1 fits them); the titles say how many were left out."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    mem_runs, mem_out = split_converged(store.runs("efficiency_mem"))
    mem = efficiency_triples(mem_runs)
    gen_runs, gen_out = split_converged(store.runs("efficiency_gen"))
    gen_only = trigonometric_only(gen_runs)
    gen = efficiency_triples(gen_only)
    unconverged = lambda runs: f", {len(runs)} unconverged left out" if runs else ""  # noqa: E731
    if len(mem):
        _scatter(axes[0, 0], fig, mem, f"(a) C_mem scatter (random labels{unconverged(mem_out)})")
        _isologit(axes[0, 1], fig, mem, "(b) C_mem isologit curves")
    else:
        missing(axes[0, 0], "efficiency_mem runs")
        missing(axes[0, 1], "efficiency_mem runs")
    if len(gen):
        _scatter(axes[1, 0], fig, gen, f"(c) C_gen scatter ({len(gen_only)}/{len(gen_runs)} converged runs > {TRIGONOMETRIC:.0%} "
                                       f"trigonometric{unconverged(gen_out)})")
        _isologit(axes[1, 1], fig, gen, "(d) C_gen isologit curves")
    else:
        why = "efficiency_gen runs" if not gen_runs else f"no efficiency_gen run reached > {TRIGONOMETRIC:.0%} trigonometric logit norm"
        missing(axes[1, 0], why)
        missing(axes[1, 1], why)
    return fig

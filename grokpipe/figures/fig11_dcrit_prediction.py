"""Fig 11 (beyond the paper): D_crit predicted from the circuits' efficiencies against the observed
ungrokking transition (grokpipe.dcrit)."""

import matplotlib.pyplot as plt
import numpy as np

from ..dcrit import DCRIT_MAX_FACTOR, predict_dcrit
from ._common import GEN, MEM, log_scale, missing


def draw(store):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.9), constrained_layout=True)
    prediction = predict_dcrit(store.runs("efficiency_mem"), store.runs("efficiency_gen"), store.runs("ungrok"))
    if prediction.reason:
        for ax in axes:
            missing(ax, prediction.reason)
        return fig
    ax = axes[0]
    c = prediction.curves
    ax.plot(c["D"], c["mem_norm"], color=MEM, label="C_mem (fit to random-label runs)")
    ax.plot(c["D"], c["gen_norm"], color=GEN, label="C_gen (fit to > 95% trigonometric runs)")
    low, high = prediction.predicted_interval
    ax.axvspan(low, high, color="0.85", label="predicted D_crit, 68% bootstrap interval")
    ax.axvline(prediction.predicted, color="k", lw=1.2, label=f"predicted {prediction.predicted:.0f}")
    ax.axvline(prediction.observed, color="tab:purple", lw=1.2, ls="--",
               label=f"observed {prediction.observed:.0f} (ungrok, test acc 0.5)")
    for wd, d in prediction.observed_by_wd.items():
        if np.isfinite(d):
            ax.axvline(d, color="tab:purple", lw=0.6, ls=":", alpha=0.8)
    log_scale(ax, "x")
    log_scale(ax, "y")
    ax.set_xlabel("dataset size D")
    ax.set_ylabel(f"norm needed for logit {c['logit']:.1f}")
    verdict = "PASS" if prediction.agrees else "FAIL"
    ax.set_title(f"(a) predicted / observed {prediction.ratio:.2f}: {verdict} (threshold: within {DCRIT_MAX_FACTOR:g}x)"
                 + (", extrapolated" if prediction.extrapolated else ""))
    ax.legend(loc="best", fontsize=6)
    ax = axes[1]
    seeds = prediction.per_seed
    if seeds:
        obs = np.array([s["observed"] for s in seeds])
        pred = np.array([s["predicted"] for s in seeds])
        ax.scatter(obs, pred, color="k", s=18, zorder=3)
        for s, x, y in zip(seeds, obs, pred):
            ax.annotate(f"seed {s['seed']}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        values = np.concatenate([obs, pred, [prediction.observed, prediction.predicted]])
        values = values[np.isfinite(values) & (values > 0)]
        span = np.array([values.min() / 1.6, values.max() * 1.6])
        ax.plot(span, span, color="0.4", lw=0.8, label="predicted = observed")
        ax.fill_between(span, span / DCRIT_MAX_FACTOR, span * DCRIT_MAX_FACTOR, color="0.9",
                        label=f"within {DCRIT_MAX_FACTOR:g}x")
        log_scale(ax, "x")
        log_scale(ax, "y")
        ax.set_xlabel("observed D_crit (this seed's ungrok runs)")
        ax.set_ylabel("predicted D_crit (this seed's C_gen)")
        ax.legend(loc="upper left", fontsize=6)
        ax.set_title("(b) per seed")
    else:
        missing(ax, "a seed with both a C_gen-only run and ungrok runs")
    return fig

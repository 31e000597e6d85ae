"""Fig 9: C_gen and C_mem development during grokking."""

import matplotlib.pyplot as plt

from ._common import missing
from ._panels import circuits_panel


def draw(store):
    fig, ax = plt.subplots(figsize=(6.5, 3.8), constrained_layout=True)
    runs = [r for r in store.runs("grok") if "gen_logit" in r.curves]
    if runs:
        r = runs[0]
        circuits_panel(ax, r, title=f"grokking run: D={r.hparams['n_train']}, seed {r.hparams['seed']}")
    else:
        missing(ax, "grok runs with circuit metrics")
    return fig

"""Fig 1: grokking, ungrokking, semi-grokking."""

import matplotlib.pyplot as plt

from ..analysis import final
from ._common import missing
from ._panels import loss_and_accuracy, pick_semigrok_run


def _ungrok_example(store):
    runs = store.runs("ungrok")
    if not runs:
        return None
    wds = sorted({r.hparams["weight_decay"] for r in runs})
    middle = wds[len(wds) // 2]
    candidates = [r for r in runs if r.hparams["weight_decay"] == middle and r.hparams["seed"] == 0]
    ungrokked = [r for r in candidates if final(r, "test_acc") < 0.3]
    return max(ungrokked, key=lambda r: r.hparams["n_train"]) if ungrokked else min(candidates, key=lambda r: final(r, "test_acc"))


def draw(store):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), constrained_layout=True)
    grok = store.runs("grok", seed=0) or store.runs("grok")
    if grok:
        r = grok[0]
        loss_and_accuracy(axes[0], r, title=f"(a) grokking: D={r.hparams['n_train']}")
    else:
        missing(axes[0], "grok runs")
    ungrok = _ungrok_example(store)
    if ungrok:
        loss_and_accuracy(axes[1], ungrok, log_x=True,
                          title=f"(b) ungrokking: D'={ungrok.hparams['n_train']}, wd={ungrok.hparams['weight_decay']:g}")
    else:
        missing(axes[1], "ungrok runs")
    semi = store.runs("semigrok")
    if semi:
        run, flagged = pick_semigrok_run(semi)
        what = "semi-grokking" if flagged else "semi-grokking attempt (criterion not met)"
        loss_and_accuracy(axes[2], run, title=f"(c) {what}: D={run.hparams['n_train']}, seed {run.hparams['seed']}")
    else:
        missing(axes[2], "semigrok runs")
    return fig

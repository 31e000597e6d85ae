"""Fig 6: one semi-grokking run in detail."""

import matplotlib.pyplot as plt

from ._common import NORM, TEST, TRAIN, log_scale, missing
from ._panels import pick_semigrok_run


def draw(store):
    fig, axes = plt.subplots(3, 1, figsize=(6, 6), sharex=True, constrained_layout=True)
    runs = store.runs("semigrok")
    if not runs:
        for ax in axes:
            missing(ax, "semigrok runs")
        return fig
    run, flagged = pick_semigrok_run(runs)
    x = run.eval_step
    axes[0].plot(x, run.curves["train_acc"], color=TRAIN, label="train")
    axes[0].plot(x, run.curves["test_acc"], color=TEST, label="test")
    axes[0].set_ylabel("accuracy")
    axes[0].legend()
    axes[1].plot(x, run.curves["train_loss"], color=TRAIN)
    axes[1].plot(x, run.curves["test_loss"], color=TEST)
    log_scale(axes[1], "y")
    axes[1].set_ylabel("loss")
    axes[2].plot(x, run.curves["param_norm"], color=NORM)
    axes[2].set_ylabel("parameter norm")
    axes[2].set_xlabel("epochs")
    note = "" if flagged else " (no run met the semi-grokking criterion: most middling run shown)"
    axes[0].set_title(f"D={run.hparams['n_train']} ({100 * run.hparams['n_train'] / run.hparams['p'] ** 2:.0f}% of the "
                      f"data), seed {run.hparams['seed']}{note}")
    return fig

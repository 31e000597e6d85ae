"""Panels that several figures draw the same way."""

from __future__ import annotations

import numpy as np

from ..analysis import SEMI_BAND, converged, final, semigrok_status, transitions
from ._common import GEN, MEM, NORM, TEST, TRAIN, colour_scale, log_scale, steps_axis


def losses_with_twin(ax, x, train_loss, test_loss, log_x: bool = False, x_label: str = "epochs"):
    """Train/test loss on a log axis; returns a twin axis for what the figure adds beside them."""
    ax.plot(x, train_loss, color=TRAIN, label="train loss")
    ax.plot(x, test_loss, color=TEST, label="test loss")
    log_scale(ax, "y")
    if log_x:
        log_scale(ax, "x")
    ax.set_xlabel(x_label)
    ax.set_ylabel("loss")
    twin = ax.twinx()
    twin.grid(False)
    return twin


def joint_legend(ax, twin, loc: str) -> None:
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [l.get_label() for l in lines], loc=loc)


def loss_and_accuracy(ax, run, log_x: bool = False, title: str = "") -> None:
    """Train/test loss (log y) with test accuracy on a twin axis, as in Fig 1."""
    twin = losses_with_twin(ax, steps_axis(run), run.curves["train_loss"], run.curves["test_loss"], log_x)
    twin.plot(steps_axis(run), run.curves["test_acc"], color="tab:purple", lw=1, label="test accuracy")
    twin.set_ylim(-0.02, 1.02)
    twin.set_ylabel("accuracy")
    joint_legend(ax, twin, "center right")
    ax.set_title(title)


def circuits_panel(ax, run, title: str = "") -> None:
    """Losses (log y) and the C_gen / C_mem correct logits and parameter norm, as in Fig 9."""
    x = steps_axis(run)
    twin = losses_with_twin(ax, x, run.curves["train_loss"], run.curves["test_loss"])
    twin.plot(x, run.curves["gen_logit"], color=GEN, ls="--", label="C_trig logit")
    twin.plot(x, run.curves["mem_logit_train"], color=MEM, ls="--", label="C_mem logit (train)")
    twin.plot(x, run.curves["param_norm"], color=NORM, ls=":", label="parameter norm")
    joint_legend(ax, twin, "upper right")
    ax.set_title(title)


def coloured_curves(fig, ax, runs, colour_values, colour_label: str, log_colour: bool = False) -> None:
    """Test accuracy over training for many runs, each coloured by a value, with its colour bar (Figs 5, 7)."""
    mapper = colour_scale(colour_values, log=log_colour)
    for run, value in sorted(zip(runs, colour_values), key=lambda pair: pair[1]):
        ax.plot(run.eval_step, run.curves["test_acc"], lw=0.9, color=mapper.to_rgba(value))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epochs")
    ax.set_ylabel("test accuracy")
    fig.colorbar(mapper, ax=ax, label=colour_label)


def transition_panel(ax, runs, title: str = "") -> None:
    """Final test accuracy against D' (log x): a mean line per weight decay, thin dashed lines per
    seed, and a cross on every run that had not converged."""
    ts = transitions(runs)
    wds = [t.weight_decay for t in ts]
    mapper = colour_scale(wds if len(wds) > 1 else [wds[0], wds[0] + 1], cmap="plasma")
    for t in ts:
        colour = mapper.to_rgba(t.weight_decay)
        ax.plot(t.sizes, t.mean_acc, "-o", ms=3, color=colour, label=f"wd {t.weight_decay:g}")
        for acc in t.seed_acc.values():
            ax.plot(t.sizes, acc, "--", lw=0.6, alpha=0.6, color=colour)
    unconverged = [r for r in runs if not converged(r)]
    if unconverged:
        ax.plot([r.hparams["n_train"] for r in unconverged], [final(r, "test_acc") for r in unconverged], "x",
                color="0.2", ms=5, label=f"not converged ({len(unconverged)})")
    log_scale(ax, "x")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("reduced dataset size D'")
    ax.set_ylabel("test accuracy")
    ax.legend(loc="lower right", title="mean; dashed: per seed")
    ax.set_title(title)


def pick_semigrok_run(runs):
    """The run that best shows semi-grokking: a flagged one with the largest late rise, else the most middling."""
    status = {r.run_id: semigrok_status(r) for r in runs}
    flagged = [r for r in runs if status[r.run_id].semi]
    if flagged:
        run = max(flagged, key=lambda r: status[r.run_id].final_test_acc - status[r.run_id].test_acc_when_fitted)
        return run, True
    mid = np.mean(SEMI_BAND)
    return min(runs, key=lambda r: abs(final(r, "test_acc") - mid)), False

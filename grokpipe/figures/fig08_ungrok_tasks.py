"""Fig 8: ungrokking on the nine other tasks. The permutation panels show S5 (the paper's) where it
was run, else S4, the quick scale's stand-in (labelled so)."""

import matplotlib.pyplot as plt

from ..analysis import FITTED, pretrain_held_out
from ..tasks import TASKS
from ._common import missing
from ._panels import transition_panel

MODULAR = ["sub", "mul", "div", "div_odd_sub", "sum_squares", "sum_squares_cross"]
PERMUTATIONS = ["s5_conj", "s5_mul", "s5_xyx"]  # the paper's; each falls back to its S4 stand-in


def _pretrain_note(store, task: str) -> str:
    """Whether the model ungrokking started from had generalised: its held-out accuracy, if it had any."""
    held_out = pretrain_held_out(store.runs("pretrain"), task)
    if held_out is None:
        return "pretrained on all data (no held-out accuracy)"
    return f"pretrain held-out accuracy {held_out:.3f}" + (" (had not generalised)" if held_out < FITTED else "")


def panel_task(store, task: str) -> tuple[str, str]:
    """The task a panel shows and its title: an S5 task if it ran, else its S4 stand-in, labelled so.
    (The modular and the permutation x*y share the word "mul": panels name their task in full.)"""
    stand_in = task.replace("s5_", "s4_", 1) if task in PERMUTATIONS else None
    if stand_in and not store.runs("ungrok_tasks", task=task) and store.runs("ungrok_tasks", task=stand_in):
        return stand_in, f"{TASKS[stand_in].formula} (quick-scale stand-in for S5)"
    return task, TASKS[task].formula


def draw(store):
    fig, axes = plt.subplots(3, 3, figsize=(12, 9.5), constrained_layout=True)
    for ax, panel in zip(axes.flat, MODULAR + PERMUTATIONS):
        task, title = panel_task(store, panel)
        runs = store.runs("ungrok_tasks", task=task)
        if runs:
            transition_panel(ax, runs, title=title)
            ax.text(0.02, 0.97, _pretrain_note(store, task), transform=ax.transAxes, va="top", fontsize=7,
                    color="0.3")
        else:
            missing(ax, f"ungrok_tasks for {title}")
            ax.set_title(title)
    return fig

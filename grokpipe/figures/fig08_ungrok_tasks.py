"""Fig 8: ungrokking on the nine other tasks."""

import matplotlib.pyplot as plt
import numpy as np

from ..analysis import final
from ..tasks import TASKS
from ._common import missing
from ._panels import transition_panel

OTHER_TASKS = [t for t in TASKS if t != "add"]


def _pretrain_note(store, task: str) -> str:
    """Whether the model ungrokking started from had generalised: its held-out accuracy, if it had any."""
    held_out = [final(r, "test_acc") for r in store.runs("pretrain", task=task)]
    held_out = [a for a in held_out if np.isfinite(a)]
    if not held_out:
        return "pretrained on all data (no held-out accuracy)"
    return f"pretrain held-out accuracy {min(held_out):.2f}" + (" (had not generalised)" if min(held_out) < 0.9 else "")


def draw(store):
    fig, axes = plt.subplots(3, 3, figsize=(12, 9), constrained_layout=True)
    for ax, task in zip(axes.flat, OTHER_TASKS):
        runs = store.runs("ungrok_tasks", task=task)
        if runs:
            transition_panel(ax, runs, title=TASKS[task].formula)
            ax.text(0.02, 0.97, _pretrain_note(store, task), transform=ax.transAxes, va="top", fontsize=7,
                    color="0.3")
        else:
            missing(ax, f"ungrok_tasks for {TASKS[task].formula}")
            ax.set_title(TASKS[task].formula)
    return fig

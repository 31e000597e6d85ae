"""Fig 8: ungrokking on the nine other tasks."""

import matplotlib.pyplot as plt

from ..tasks import TASKS
from ._common import missing
from ._panels import transition_panel

OTHER_TASKS = [t for t in TASKS if t != "add"]


def draw(store):
    fig, axes = plt.subplots(3, 3, figsize=(12, 9), constrained_layout=True)
    for ax, task in zip(axes.flat, OTHER_TASKS):
        runs = store.runs("ungrok_tasks", task=task)
        if runs:
            transition_panel(ax, runs, title=TASKS[task].formula)
        else:
            missing(ax, f"ungrok_tasks for {TASKS[task].formula}")
            ax.set_title(TASKS[task].formula)
    return fig

"""Curves of the current run and any selected runs, in the terminal (textual-plotext)."""

from __future__ import annotations

import numpy as np
from textual_plotext import PlotextPlot

from ...store import Run

VIEWS = {
    "loss": (("train_loss", "train loss"), ("test_loss", "test loss")),
    "accuracy": (("train_acc", "train acc"), ("test_acc", "test acc")),
    "norm": (("param_norm", "parameter norm"),),
    "circuits": (("gen_logit", "C_gen logit"), ("mem_logit_train", "C_mem logit")),
}


class RunPlot(PlotextPlot):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.view = "accuracy"
        self.log_x = False
        self.runs: list[tuple[str, Run]] = []

    def show(self, runs: list[tuple[str, Run]]) -> None:
        self.runs = runs
        self.redraw()

    def redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"{self.view}{' (log x)' if self.log_x else ''}  [1-4 view, x log]")
        plt.xlabel("epochs")
        drawn = False
        for label, run in self.runs:
            x = np.maximum(run.eval_step, 1) if self.log_x else run.eval_step
            for metric, name in VIEWS[self.view]:
                y = run.curves.get(metric)
                if y is None or len(y) == 0:
                    continue
                keep = np.isfinite(y)
                if self.view == "loss":
                    keep &= y > 0
                if not keep.any():
                    continue
                plt.plot(x[keep].tolist(), y[keep].tolist(), label=f"{name} {label}" if len(self.runs) > 1 else name)
                drawn = True
        if drawn:  # plotext cannot put an empty plot on log axes
            plt.xscale("log" if self.log_x else "linear")
            plt.yscale("log" if self.view == "loss" else "linear")
        self.refresh()

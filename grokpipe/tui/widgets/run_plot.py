"""Curves of the current run and any selected runs, in braille (grokpipe.tui.widgets.braille).

The widget owns how it plots (view, log x, smoothing, x axis by epochs or wall time) and draws
only when what it would draw changed; repaints come from the lines drawn last. :meth:`RunPlot.series`
is the data it draws, which saving the plot as an image (matplotlib) reuses.
"""

from __future__ import annotations

import numpy as np
from textual.strip import Strip
from textual.widget import Widget

from ...store import Run
from ..views import VIEW_BY_NAME, VIEWS
from .braille import render_plot

SMOOTHING = 0.8  # exponential moving average weight of the past, over evaluations
MAX_POINTS = 400  # a terminal plot is at most a few hundred dots wide: more points only cost time


def smooth(values: np.ndarray, weight: float = SMOOTHING) -> np.ndarray:
    """Exponential moving average, as run viewers smooth noisy curves (the first value unchanged)."""
    out = np.empty(len(values))
    level = values[0] if len(values) else 0.0
    for i, v in enumerate(values):
        level = weight * level + (1 - weight) * v
        out[i] = level if i else v
    return out


class RunPlot(Widget):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.view = VIEWS[1].name
        self.log_x = False
        self.smoothed = False
        self.wall_time = False  # x axis: training wall seconds instead of epochs
        self.runs: list[tuple[str, Run]] = []
        self.lines: list[Strip] = []
        self._drawn = None  # what the lines show

    def show(self, runs: list[tuple[str, Run]]) -> None:
        self.runs = runs
        self.redraw()

    def x_label(self) -> str:
        return "wall time (s)" if self.wall_time else "epochs"

    def title(self) -> str:
        flags = [f for f, on in (("log x", self.log_x), ("smoothed", self.smoothed)) if on]
        return f"{self.view}{' (' + ', '.join(flags) + ')' if flags else ''}"

    def series(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(label, x, y) of every curve the current settings draw."""
        out = []
        view = VIEW_BY_NAME[self.view]
        for label, run in self.runs:
            wall = run.eval_wall if run.eval_wall is not None else np.full(len(run.eval_step), np.nan)
            x = wall if self.wall_time else run.eval_step.astype(float)
            if self.log_x:
                x = np.maximum(x, 1)
            for metric, name in view.curves:
                y = run.curves.get(metric)
                if y is None or len(y) == 0:
                    continue
                keep = np.isfinite(y) & np.isfinite(x) & ((y > 0) if view.log_y else True)
                if not keep.any():
                    continue
                ys = smooth(y[keep]) if self.smoothed else y[keep]
                out.append((f"{name} {label}" if len(self.runs) > 1 else name, x[keep], ys))
        return out

    def redraw(self) -> None:
        signature = (self.view, self.log_x, self.smoothed, self.wall_time, self.size,
                     tuple((label, id(run), len(run.eval_step)) for label, run in self.runs))
        if signature == self._drawn:
            return
        self._drawn = signature
        series = [(label, x[:: max(1, len(x) // MAX_POINTS)], y[:: max(1, len(x) // MAX_POINTS)])
                  for label, x, y in self.series()]
        self.lines = render_plot(series, self.size.width, self.size.height, self.title(), self.x_label(),
                                 self.log_x, VIEW_BY_NAME[self.view].log_y)
        self.refresh()

    def on_resize(self) -> None:
        self.redraw()

    def render_line(self, y: int) -> Strip:
        return self.lines[y] if y < len(self.lines) else Strip.blank(self.size.width)

"""What every figure shares: the store it reads, the house style, and how it says "not run here"."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..files import FORMATS, atomic_write, check_output  # noqa: E402
from ..store import Run, read_metrics, read_simulation  # noqa: E402

plt.rcParams.update({
    "figure.dpi": 100, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.25, "font.size": 9, "axes.titlesize": 9, "legend.fontsize": 7, "legend.frameon": False,
})
TRAIN, TEST = "tab:blue", "tab:orange"
GEN, MEM, NORM = "tab:green", "tab:red", "tab:gray"


class FigureStore:
    """Runs of the aggregated metrics file, read once and grouped by experiment."""

    def __init__(self, metrics: Path):
        self.path = metrics

    @cached_property
    def _runs(self) -> dict[str, list[Run]]:
        from ..analysis import group_by

        out = group_by(self.all_runs, "experiment")
        for runs in out.values():
            runs.sort(key=lambda r: (r.hparams.get("task", ""), r.hparams["n_train"], r.hparams["weight_decay"],
                                     r.hparams["seed"]))
        return out

    @cached_property
    def all_runs(self) -> list[Run]:
        return read_metrics(self.path)

    def runs(self, experiment: str, **hparams) -> list[Run]:
        from ..analysis import runs_where

        return runs_where(self._runs.get(experiment, []), **hparams)

    @cached_property
    def simulation(self) -> dict | None:
        return read_simulation(self.path)

    def made_by(self) -> str:
        """Which trainer made the runs, for the figure's footer (and a warning when they mix trainers)."""
        from ..provenance import provenance_summary

        if not self.all_runs:
            return ""
        summary = provenance_summary(self.all_runs)
        text = "runs by " + "; ".join(summary["trainers"]) + (" on " + "; ".join(summary["devices"])
                                                               if summary["devices"] else "")
        return ("MIXED TRAINERS - " if summary["mixed"] else "") + text


def one_panel(store: FigureStore, experiment: str, figsize=(6, 3.8)):
    """A one-panel figure and the experiment's runs; the panel says "not run" when there are none."""
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    runs = store.runs(experiment)
    if not runs:
        missing(ax, f"{experiment} runs")
    return fig, ax, runs


def missing(ax, what: str) -> None:
    """Say on the figure that its runs are absent at this scale (never an empty silent panel)."""
    ax.text(0.5, 0.5, f"not run at this scale:\n{what}", ha="center", va="center", transform=ax.transAxes,
            fontsize=8, color="0.35", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def steps_axis(run: Run) -> np.ndarray:
    """Evaluation steps, with step 0 nudged to 1 so log axes can show it."""
    return np.maximum(run.eval_step, 1)


def log_scale(ax, axis: str = "x") -> None:
    """A log axis for data already plotted. Over a few decades, matplotlib labels minor ticks until
    they collide; there, label 1, 2, 5 x 10^k in plain numbers instead."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    getattr(ax, f"set_{axis}scale")("log")
    low, high = ax.dataLim.intervalx if axis == "x" else ax.dataLim.intervaly
    if not (low > 0 and np.isfinite(high)) or high / low > 1e3:
        return
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def colour_scale(values, cmap="viridis", log=False):
    values = np.asarray(values, float)
    norm = (matplotlib.colors.LogNorm if log else matplotlib.colors.Normalize)(values.min(), values.max())
    mapper = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    return mapper


# matplotlib writes these as metadata: the guard (grokpipe.files) knows its own figures by them
_METADATA = {"png": {"Software": FORMATS["figure"]}, "pdf": {"Creator": FORMATS["figure"]},
             "svg": {"Creator": FORMATS["figure"]}}


def footer(fig, text: str) -> None:
    """A small line under the figure: which trainer made its runs."""
    if text:
        fig.text(0.995, 0.0, text, ha="right", va="top", fontsize=5.5, color="0.45")


def save(fig, out_dir: Path, name: str, formats, dpi: int) -> list[Path]:
    """Write each format atomically (a half-written figure is never left behind), and never over a
    file that is not one of grokpipe's figures."""
    paths = [out_dir / f"{name}.{ext}" for ext in formats]
    for path in paths:
        check_output(path, "figure")
    for path, ext in zip(paths, formats):
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight",
                                                   metadata=_METADATA[ext]), "figure")
    plt.close(fig)
    return paths

"""Save what the terminal plot shows as an image: matplotlib, from the same series."""

from __future__ import annotations

from pathlib import Path


def save_plot(path: Path, title: str, series, x_label: str, log_x: bool, log_y: bool) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..figures._common import save

    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    for label, x, y in series:
        ax.plot(x, y, label=label)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_title(title)
    ax.legend(fontsize=7)
    (written,) = save(fig, Path(path).parent, Path(path).stem, ("png",), 150)
    return written

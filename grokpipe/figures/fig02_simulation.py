"""Fig 2: the minimal example, Table 1 cases a, b, c."""

import matplotlib.pyplot as plt
import numpy as np

from ._common import GEN, MEM, NORM, TEST, TRAIN, log_scale, missing

TITLES = {"a": "(a) all three ingredients", "b": "(b) C_gen less efficient than C_mem", "c": "(c) equal learning speeds"}


def draw(store):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), constrained_layout=True)
    sim = store.simulation
    if not sim:
        for ax in axes:
            missing(ax, "simulation")
        return fig
    for ax, case in zip(axes, sim["cases"]):
        c = case["curves"]
        steps = np.arange(len(c["train_loss"]))
        ax.plot(steps, c["train_loss"], color=TRAIN, label="train loss")
        ax.plot(steps, c["test_loss"], color=TEST, label="test loss")
        log_scale(ax, "y")
        ax.set_xlabel("steps")
        ax.set_ylabel("loss")
        twin = ax.twinx()
        twin.plot(steps, c["gen_weight"], color=GEN, ls="--", label="gen logit")
        twin.plot(steps, c["mem_weight"], color=MEM, ls="--", label="mem logit")
        twin.plot(steps, c["param_norm"], color=NORM, ls=":", label="parameter norm")
        twin.set_ylim(0, 10.5)
        twin.grid(False)
        lines = ax.get_lines() + twin.get_lines()
        ax.legend(lines, [l.get_label() for l in lines], loc="center right")
        name = case["case"]["name"]
        ax.set_title(f"{TITLES.get(name, name)}: P_G={case['case']['P_gen']:g}, P_M={case['case']['P_mem']:g}, "
                     f"w_G2(0)={case['case']['w_gen2']:g}")
    return fig

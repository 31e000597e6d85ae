"""Fig 2: the minimal example, Table 1 cases a, b, c."""

import matplotlib.pyplot as plt
import numpy as np

from ._common import GEN, MEM, NORM, missing
from ._panels import joint_legend, losses_with_twin

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
        twin = losses_with_twin(ax, steps, c["train_loss"], c["test_loss"], x_label="steps")
        twin.plot(steps, c["gen_weight"], color=GEN, ls="--", label="gen logit")
        twin.plot(steps, c["mem_weight"], color=MEM, ls="--", label="mem logit")
        twin.plot(steps, c["param_norm"], color=NORM, ls=":", label="parameter norm")
        twin.set_ylim(0, 10.5)
        joint_legend(ax, twin, "center right")
        name = case["case"]["name"]
        ax.set_title(f"{TITLES.get(name, name)}: P_G={case['case']['P_gen']:g}, P_M={case['case']['P_mem']:g}, "
                     f"w_G2(0)={case['case']['w_gen2']:g}")
    return fig

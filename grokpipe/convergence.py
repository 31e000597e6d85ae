"""When a run has converged: its accuracy and log parameter norm have stopped drifting.

One criterion, used by the trainer (a shard may stop once every run has converged), by
aggregation (each run's ``converged`` flag in ``results/metrics.h5``) and by claims and figures
(which use converged runs and say how many were not). Numpy only.

The criterion compares the two halves of the last quarter of training: a drift of the half-means
is what a run still on its way shows, while the evaluation-to-evaluation jitter of accuracy near a
transition (about 0.05 here) averages out (to about 0.02 over ten evaluations). The tolerances are fixed in advance, not fitted to any
result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Criterion:
    window: float = 0.25  # the last quarter of the steps trained so far
    accuracy_drift: float = 0.03  # |mean accuracy, last eighth - the eighth before| at most this
    log_norm_drift: float = 0.01  # |mean log parameter norm, same halves| at most this (1% of the norm)
    min_evaluations: int = 8  # in the window: fewer cannot show a trend

    def describe(self) -> str:
        return (f"over the last {self.window:.0%} of training (>= {self.min_evaluations} evaluations), the mean of "
                f"its second half differs from its first half by at most {self.accuracy_drift:g} in accuracy (test "
                f"accuracy, or train accuracy without a test set) and {self.log_norm_drift:g} in log parameter norm")


CRITERION = Criterion()


def _half_drift(values: np.ndarray) -> float:
    half = len(values) // 2
    return float(abs(np.mean(values[half:]) - np.mean(values[:half])))


def converged(eval_step: np.ndarray, accuracy: np.ndarray, param_norm: np.ndarray,
              criterion: Criterion = CRITERION) -> bool:
    """Whether one run's curves have settled (see the module docstring)."""
    eval_step = np.asarray(eval_step)
    if len(eval_step) == 0:
        return False
    inside = eval_step >= (1 - criterion.window) * eval_step[-1]
    acc, norm = np.asarray(accuracy)[inside], np.asarray(param_norm)[inside]
    if inside.sum() < criterion.min_evaluations or not (np.all(np.isfinite(acc)) and np.all(norm > 0)):
        return False
    return _half_drift(acc) <= criterion.accuracy_drift and _half_drift(np.log(norm)) <= criterion.log_norm_drift


def accuracy_curve(curves: dict[str, np.ndarray]) -> np.ndarray:
    """Test accuracy where the run has a test set, else train accuracy."""
    test = np.asarray(curves.get("test_acc", []), dtype=float)
    return test if len(test) and np.isfinite(test).any() else np.asarray(curves.get("train_acc", []), dtype=float)


def run_converged(eval_step: np.ndarray, curves: dict[str, np.ndarray], criterion: Criterion = CRITERION) -> bool:
    return converged(eval_step, accuracy_curve(curves), curves.get("param_norm", np.array([])), criterion)

"""When a run has converged: its accuracy and log parameter norm have stopped drifting, and, for a
run that measures circuit efficiency (``ShardSpec.settle_logit``), its log correct logit too: such a
run's accuracy is flat from its first steps, so accuracy and norm alone stopped it while the logit
it measures still moved (docs/dcrit.md).

One criterion, used by the trainer (a run stops once it passes the criterion with a margin, judged
on its own curves; the shard ends when every run has stopped) and by claims and figures (which use
converged runs and say how many were not). It is computed from the stored
curves whenever it is needed, not stored as a flag, so it cannot go stale when the criterion
changes. Numpy only.

The criterion compares the last two quarters of training: a drift of their means is what a run
still on its way shows, while the evaluation-to-evaluation jitter of accuracy near a transition
(about 0.05 here) averages out. Two quarters rather than the halves of the last one: a run that
relaxes slowly (near D_crit, or while weight decay still shrinks its norm) must look flat over half
its training before it counts, so a shard that stops early on convergence does not stop in a lull.
The tolerances are fixed in advance, not fitted to any result; the stopping margin below was set
from how far stopped runs went on to move and from the quick scale's time budget, not from any claim.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Criterion:
    window: float = 0.5  # the last half of the steps trained so far: its two quarters are compared
    accuracy_drift: float = 0.03  # |mean accuracy, last quarter - the quarter before| at most this
    # |mean log parameter norm, same quarters| at most this (5% of the norm); the runs that measure
    # efficiency (a logit and the norm it costs: ShardSpec.settle_logit) hold their log correct logit
    # to the same tolerance
    log_norm_drift: float = 0.05
    min_evaluations: int = 8  # in the window: fewer cannot show a trend
    # weight decay must have had time to act: lr x wd x steps at least this (about three e-foldings
    # of decay alone). A run continued from a checkpoint can sit unchanged for hundreds of steps
    # before it moves (ungrokking starts late), and must not count as converged then.
    min_decay: float = 3.0

    def describe(self) -> str:
        return (f"the mean over the last quarter of its training differs from the mean over the quarter before "
                f"(>= {self.min_evaluations} evaluations in both) by at most {self.accuracy_drift:g} in accuracy "
                f"(test accuracy, or train accuracy without a test set) and {self.log_norm_drift:g} in log "
                f"parameter norm (and, in the efficiency runs, as much in log correct logit), "
                f"after lr x weight decay x steps >= {self.min_decay:g}")


CRITERION = Criterion()

# A run stops training early (``stop_when_converged``) only once it passes the criterion with this
# margin: STOP_CRITERION's tolerances are CRITERION's divided by it. Stopping is tested at every
# evaluation and cannot be undone, so a run that sits in a lull passes the plain criterion sooner or
# later on its way down. Measured on the quick pipeline's 209 ungrok, ungrok_tasks and efficiency
# runs, each trained until it passed the criterion with a margin of 3 or reached its cap, and the
# stops at smaller margins replayed on those curves (exact: a run that stops changes no other
# run's numbers; docs/quick-scale.md, "Convergence"): stopped at a margin of 1, 52 runs were then
# more than 0.03 in accuracy from where they went on to; at 1.5, 26; at 2, 8 of the 110 it stops
# earlier than 3 does, for 13% less training than 3; at 2.5, 3. The margin is 2: 3 would cost the
# quick scale about 2 more minutes than 2, which itself puts it at its 20-minute budget.
# Claims and figures judge a run once, at its end, with CRITERION itself.
STOP_MARGIN = 2.0
STOP_CRITERION = replace(CRITERION, accuracy_drift=CRITERION.accuracy_drift / STOP_MARGIN,
                         log_norm_drift=CRITERION.log_norm_drift / STOP_MARGIN)


def _half_drift(values: np.ndarray) -> float:
    half = len(values) // 2
    return float(abs(np.mean(values[half:]) - np.mean(values[:half])))


def _log_settled(values: np.ndarray, tolerance: float) -> bool:
    """A positive curve whose log drifted by at most ``tolerance`` (the parameter norm; a correct logit)."""
    return bool(np.all(values > 0)) and _half_drift(np.log(values)) <= tolerance


def converged(eval_step: np.ndarray, accuracy: np.ndarray, param_norm: np.ndarray, decay_per_step: float,
              criterion: Criterion = CRITERION, logit: np.ndarray | None = None) -> bool:
    """Whether one run's curves have settled (see the module docstring); ``decay_per_step`` is its
    lr x weight decay. With ``logit`` (its correct logit), that must have settled too; a logit not
    yet above zero has not."""
    eval_step = np.asarray(eval_step)
    if len(eval_step) == 0 or 0 < decay_per_step * eval_step[-1] < criterion.min_decay:
        return False  # (without weight decay there is no such time to wait for)
    inside = eval_step >= (1 - criterion.window) * eval_step[-1]  # two quarters: compared by _half_drift
    acc, norm = np.asarray(accuracy)[inside], np.asarray(param_norm)[inside]
    if inside.sum() < criterion.min_evaluations or not np.all(np.isfinite(acc)):
        return False
    if logit is not None:
        logit = np.asarray(logit)
        if len(logit) != len(eval_step) or not _log_settled(logit[inside], criterion.log_norm_drift):
            return False  # (a record without the curve cannot show it settled)
    return _half_drift(acc) <= criterion.accuracy_drift and _log_settled(norm, criterion.log_norm_drift)


def accuracy_curve(curves: dict[str, np.ndarray]) -> np.ndarray:
    """Test accuracy where the run has a test set, else train accuracy."""
    test = np.asarray(curves.get("test_acc", []), dtype=float)
    return test if len(test) and np.isfinite(test).any() else np.asarray(curves.get("train_acc", []), dtype=float)


def run_converged(eval_step: np.ndarray, curves: dict[str, np.ndarray], decay_per_step: float,
                  criterion: Criterion = CRITERION, settle_logit: bool = False) -> bool:
    """:func:`converged` on a run's stored curves; ``settle_logit``: its ``train_logit`` must have settled too."""
    logit = curves.get("train_logit", np.array([])) if settle_logit else None
    return converged(eval_step, accuracy_curve(curves), curves.get("param_norm", np.array([])), decay_per_step,
                     criterion, logit)

"""Numbers from runs: final values, convergence, the ungrokking transition, efficiency fits,
grokking delays, semi-grokking, and where the semi-grokking band lies.

Everything here reads :class:`grokpipe.store.Run` objects (numpy only, no torch), so figures,
claims and the pipeline's adaptive stage compute the same numbers the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .convergence import run_converged
from .store import Run

FINAL_EVALS = 5  # "final" = mean of the last evaluations: accuracy jitters near transitions
FITTED = 0.99  # accuracy that counts as having fitted a set (train: memorised; test: generalised)
CHANCE = 0.2  # final test accuracy at or below this: the run did not generalise
FULL = 0.9  # final test accuracy at or above this: the run generalised
LOGIT_BUCKETS = 6  # geometric buckets of correct logit for isologit curves (Fig 3, P1)


def final(run: Run, metric: str) -> float:
    return run.final(metric, FINAL_EVALS)


def pretrain_held_out(pretrain_runs: list[Run], task: str) -> float | None:
    """The lowest held-out test accuracy of a task's pretrained models (where ungrokking starts),
    or None when they held nothing out: whether ungrokking started from a model that had generalised."""
    held_out = [final(r, "test_acc") for r in pretrain_runs if r.hparams.get("task") == task]
    held_out = [a for a in held_out if np.isfinite(a)]
    return min(held_out) if held_out else None


def runs_where(runs: list[Run], **hparams) -> list[Run]:
    return [r for r in runs if all(np.isclose(r.hparams.get(k), v) if isinstance(v, float) else r.hparams.get(k) == v
                                   for k, v in hparams.items())]


def group_by(runs: list[Run], key: str) -> dict:
    out: dict = {}
    for r in runs:
        out.setdefault(r.hparams[key], []).append(r)
    return dict(sorted(out.items()))


def converged(run: Run) -> bool:
    return run_converged(run.eval_step, run.curves, run.hparams.get("lr", 0.0) * run.hparams.get("weight_decay", 0.0),
                         settle_logit=bool(run.hparams.get("settle_logit", False)))


def split_converged(runs: list[Run]) -> tuple[list[Run], list[Run]]:
    """(converged runs, the others)."""
    flags = [converged(r) for r in runs]
    return [r for r, f in zip(runs, flags) if f], [r for r, f in zip(runs, flags) if not f]


# ---------------------------------------------------------------- ungrokking


@dataclass(frozen=True)
class Transition:
    """Final test accuracy against training set size for one weight decay."""

    weight_decay: float
    sizes: np.ndarray  # distinct D'
    mean_acc: np.ndarray  # mean over seeds
    seed_acc: dict  # seed -> array over sizes (NaN where missing)

    def crossing(self, level: float) -> float:
        return crossing_point(self.sizes, self.mean_acc, level)

    def seed_crossing(self, seed, level: float) -> float:
        return crossing_point(self.sizes, self.seed_acc[seed], level)


def crossing_point(sizes: np.ndarray, acc: np.ndarray, level: float) -> float:
    """The D where accuracy (rising with D) first crosses ``level``, interpolated in log D; NaN if never."""
    keep = np.isfinite(np.asarray(acc, float))
    sizes, acc = np.asarray(sizes, float)[keep], np.asarray(acc, float)[keep]
    for i in range(len(sizes) - 1):
        a, b = acc[i], acc[i + 1]
        if a < level <= b:
            t = (level - a) / (b - a)
            return float(np.exp(np.log(sizes[i]) + t * (np.log(sizes[i + 1]) - np.log(sizes[i]))))
    return float("nan")


def transitions(runs: list[Run]) -> list[Transition]:
    out = []
    for wd, group in group_by(runs, "weight_decay").items():
        sizes = np.array(sorted({r.hparams["n_train"] for r in group}))
        seeds = sorted({r.hparams["seed"] for r in group})
        seed_acc = {s: np.full(len(sizes), np.nan) for s in seeds}
        for r in group:
            seed_acc[r.hparams["seed"]][np.searchsorted(sizes, r.hparams["n_train"])] = final(r, "test_acc")
        with np.errstate(all="ignore"):
            mean = np.nanmean(np.vstack(list(seed_acc.values())), axis=0)
        out.append(Transition(float(wd), sizes, mean, seed_acc))
    return out


# ---------------------------------------------------------------- efficiency


@dataclass(frozen=True)
class Efficiency:
    """log(param norm) = a + b log(logit) + c log(D), fitted over converged single-circuit runs.

    ``c`` is how much more parameter norm the circuit needs for the same logit as D grows."""

    n_runs: int
    intercept: float
    slope_D: float
    slope_D_se: float
    slope_logit: float
    covariance: list  # of (intercept, slope_logit, slope_D)
    residual_sd: float
    bucket_slopes: list  # per geometric logit bucket: d log(norm) / d log(D)
    norm_range: list  # smallest and largest parameter norm of the runs fitted: how far the fit reaches

    def log_norm(self, logit, n_train) -> np.ndarray:
        return self.intercept + self.slope_logit * np.log(logit) + self.slope_D * np.log(n_train)


def efficiency_triples(runs: list[Run]) -> np.ndarray:
    """(correct logit, parameter norm, D) at each run's last evaluation, one row per run with a
    positive logit. One state of the network, unlike :func:`final`'s mean: a run whose logit and
    norm jump between its last evaluations (a C_gen run at weight decay 2 fell from logit ~310 to
    ~100 at its very last one) would otherwise give a pair that no state of it had."""
    rows = [(r.final("train_logit"), r.final("param_norm"), r.hparams["n_train"]) for r in runs]
    rows = [row for row in rows if np.isfinite(row[0]) and row[0] > 0]
    return np.array(rows, dtype=float).reshape(-1, 3)


def geometric_buckets(values: np.ndarray, count: int = LOGIT_BUCKETS) -> np.ndarray:
    """``count + 1`` geometric bucket edges spanning the values (the largest inside the last bucket):
    isologit curves bucket runs by logit, Fig 10 by parameter norm."""
    return np.geomspace(values.min(), values.max() * (1 + 1e-9), count + 1)


def fit_efficiency(t: np.ndarray) -> Efficiency | None:
    """The least-squares fit of :class:`Efficiency` to (logit, norm, D) triples; None if D never varies."""
    if len(t) < 4 or len(np.unique(t[:, 2])) < 2:
        return None
    X = np.column_stack([np.ones(len(t)), np.log(t[:, 0]), np.log(t[:, 2])])
    y = np.log(t[:, 1])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    variance = resid @ resid / max(len(t) - 3, 1)
    cov = variance * np.linalg.pinv(X.T @ X)
    slopes = []
    edges = geometric_buckets(t[:, 0])
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = t[(t[:, 0] >= lo) & (t[:, 0] < hi)]
        if len(np.unique(inside[:, 2])) >= 2:
            slopes.append(float(np.polyfit(np.log(inside[:, 2]), np.log(inside[:, 1]), 1)[0]))
    return Efficiency(len(t), float(coef[0]), float(coef[2]), float(np.sqrt(cov[2, 2])), float(coef[1]),
                      cov.tolist(), float(np.sqrt(variance)), slopes, [float(t[:, 1].min()), float(t[:, 1].max())])


def efficiency(runs: list[Run]) -> Efficiency | None:
    return fit_efficiency(efficiency_triples(runs))


TRIGONOMETRIC = 0.95  # a C_gen-only run: more of its logits' norm trigonometric than this (the paper's test)


def trigonometric_only(runs: list[Run], fraction: float = TRIGONOMETRIC) -> list[Run]:
    """C_gen-only runs: > ``fraction`` of the logits' norm in the trigonometric directions (the paper's test)."""
    return [r for r in runs if final(r, "trig_fraction") > fraction]


# ---------------------------------------------------------------- grokking and semi-grokking


def first_step(run: Run, metric: str, level: float) -> float:
    values = run.curves.get(metric)
    if values is None:
        return float("nan")
    hit = np.nonzero(values >= level)[0]
    return float(run.eval_step[hit[0]]) if len(hit) else float("nan")


@dataclass(frozen=True)
class SemiGrok:
    key: str
    n_train: int
    seed: int
    final_test_acc: float
    test_acc_when_fitted: float  # test accuracy when train accuracy first reached FITTED
    late_range: float  # max - min of test accuracy over the last PLATEAU_FRACTION of training
    semi: bool  # fitted early, then rose to a middling (not full) accuracy, and stayed there


SEMI_BAND = (0.2, 0.85)
SEMI_RISE = 0.1
PLATEAU_FRACTION = 0.25  # semi-grokking is a middling accuracy at convergence, not a run caught mid-grok
PLATEAU_RANGE = 0.1


def semigrok_status(run: Run) -> SemiGrok:
    fitted = first_step(run, "train_acc", FITTED)
    test = run.curves["test_acc"]
    at_fit = float(test[np.searchsorted(run.eval_step, fitted)]) if np.isfinite(fitted) else float("nan")
    final_test = final(run, "test_acc")
    late = test[run.eval_step >= (1 - PLATEAU_FRACTION) * run.eval_step[-1]]
    late_range = float(late.max() - late.min()) if len(late) else float("nan")
    semi = (
        final(run, "train_acc") >= FITTED
        and SEMI_BAND[0] <= final_test <= SEMI_BAND[1]
        and np.isfinite(at_fit)
        and final_test - at_fit >= SEMI_RISE
        and late_range <= PLATEAU_RANGE
    )
    return SemiGrok(run.run_id, int(run.hparams["n_train"]), int(run.hparams["seed"]), final_test, at_fit,
                    late_range, bool(semi))


def semigrok_band(runs: list[Run], sizes: int) -> dict:
    """Where from-scratch runs turn from chance to full test accuracy: per seed, the largest D that
    stayed at chance (<= CHANCE) and the smallest larger D that generalised (>= FULL); the band spans
    every seed's turn. Returns the band, ``sizes`` training set sizes spaced geometrically inside it
    (its ends are where runs stayed at chance or grokked fully: the middling runs are between), and
    what each seed showed; no sizes when no seed turned inside the sweep."""
    per_seed = {}
    for seed, group in group_by(runs, "seed").items():
        finals = sorted((r.hparams["n_train"], final(r, "test_acc")) for r in group)
        chance = [d for d, acc in finals if acc <= CHANCE]
        low = max(chance) if chance else None
        full = [d for d, acc in finals if acc >= FULL and (low is None or d > low)]
        per_seed[int(seed)] = {"finals": finals, "low": low, "high": min(full) if full else None}
    turned = [s for s in per_seed.values() if s["low"] is not None and s["high"] is not None]
    result = {"per_seed": per_seed, "chance": CHANCE, "full": FULL, "searched": sorted({r.hparams["n_train"] for r in runs})}
    if not turned:
        return {**result, "low": None, "high": None, "sizes": []}
    low, high = min(s["low"] for s in turned), max(s["high"] for s in turned)
    placed = sorted({int(round(d)) for d in np.geomspace(low, high, sizes + 2)[1:-1]})
    return {**result, "low": low, "high": high, "sizes": placed}

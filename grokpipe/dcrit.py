"""D_crit predicted from the circuits' measured efficiencies, against the observed ungrokking transition.

The paper's account (Section 4.1, Appendix D): a circuit that produces a correct logit ``o`` costs
parameter norm ``P``; with ``o`` growing as a power of the norm (Theorem D.4's ``P' = w^(1/kappa) P``),
``log P = a + b log o``. C_mem must store every example, so its norm for a given logit grows with
D; C_gen's does not (prediction P1). We fit, over converged single-circuit runs (Fig 3's runs:
random labels for C_mem, > 95% trigonometric for C_gen),

    C_mem:  log P = a_m + b_m log o + c_m log D
    C_gen:  log P = a_g + b_g log o + c_g log D      (c_g should be ~0: checked, flagged otherwise)

and predict D_crit as the D where both need the same norm for the same logit,

    log D_crit(o) = (a_g - a_m + (b_g - b_m) log o) / (c_m - c_g),

at the logits ``o`` where the ungrokking runs near the transition actually operate (their final
centred correct logit). Assumptions: both fits hold between and beyond the measured D (the crossing
may be an extrapolation: the result says so), the network's whole parameter norm is what weight
decay trades (as in the paper's Fig 3), and one logit describes the operating point. The observed
D_crit is where the final test accuracy of the ungrok sweep crosses 0.5 (the geometric mean over
weight decays, as P3 computes it). Uncertainty: a bootstrap over runs (efficiency runs, and seeds
of the ungrok sweep). docs/dcrit.md says the same in a few lines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .analysis import (
    TRIGONOMETRIC,
    Efficiency,
    crossing_point,
    efficiency_triples,
    final,
    fit_efficiency,
    split_converged,
    transitions,
    trigonometric_only,
)
from .store import Run

DCRIT_MAX_FACTOR = 1.5  # predicted / observed within this factor either way: PASS (set before any result)
NEAR_TRANSITION = 1.5  # ungrok runs with D' within this factor of the observed D_crit set the operating logits
BOOTSTRAP = 400
GEN_D_SIGMAS = 2.0  # a C_gen slope in log D beyond this many standard errors is flagged


@dataclass
class Prediction:
    reason: str = ""  # why there is no prediction (empty when there is one)
    predicted: float = float("nan")
    predicted_interval: tuple = (float("nan"), float("nan"))  # 16th-84th percentile of the bootstrap
    observed: float = float("nan")
    observed_by_wd: dict = field(default_factory=dict)
    ratio: float = float("nan")
    ratio_interval: tuple = (float("nan"), float("nan"))
    logit_range: tuple = (float("nan"), float("nan"))  # operating logits of the runs near the transition
    across_logits: tuple = (float("nan"), float("nan"))  # the prediction at the two ends of that range
    extrapolated: bool = False  # the crossing lies outside the D range of the C_mem runs
    gen_depends_on_D: bool = False
    mem: dict = field(default_factory=dict)
    gen: dict = field(default_factory=dict)
    per_seed: list = field(default_factory=list)  # {seed, predicted, observed}
    curves: dict = field(default_factory=dict)  # norm needed at the operating logit against D, for the figure

    @property
    def agrees(self) -> bool:
        """The check: predicted / observed within DCRIT_MAX_FACTOR either way."""
        return 1 / DCRIT_MAX_FACTOR <= self.ratio <= DCRIT_MAX_FACTOR

    def as_dict(self) -> dict:
        return asdict(self)


def crossing_D(mem: Efficiency, gen: Efficiency, logit) -> np.ndarray:
    """D where the two fits need the same norm for ``logit`` (NaN where C_mem does not outgrow C_gen)."""
    slope = mem.slope_D - gen.slope_D
    log_d = (gen.intercept - mem.intercept + (gen.slope_logit - mem.slope_logit) * np.log(logit)) / slope
    return np.where(slope > 0, np.exp(log_d), np.nan)


def observed_dcrit(ungrok_runs: list[Run]) -> tuple[float, dict]:
    """Geometric mean over weight decays of where the mean final test accuracy crosses 0.5."""
    by_wd = {t.weight_decay: t.crossing(0.5) for t in transitions(ungrok_runs)}
    values = np.array([v for v in by_wd.values() if np.isfinite(v)])
    return (float(np.exp(np.log(values).mean())) if len(values) else float("nan")), by_wd


def operating_logits(ungrok_runs: list[Run], observed: float) -> np.ndarray:
    near = [r for r in ungrok_runs if observed / NEAR_TRANSITION <= r.hparams["n_train"] <= observed * NEAR_TRANSITION]
    logits = np.array([final(r, "train_logit") for r in near])
    return logits[np.isfinite(logits) & (logits > 0)]


def predict_dcrit(mem_runs: list[Run], gen_runs: list[Run], ungrok_runs: list[Run], seed: int = 0) -> Prediction:
    mem_runs, _ = split_converged(mem_runs)
    gen_runs = trigonometric_only(split_converged(gen_runs)[0])
    ungrok_runs, _ = split_converged(ungrok_runs)
    mem_t, gen_t = efficiency_triples(mem_runs), efficiency_triples(gen_runs)
    mem, gen = fit_efficiency(mem_t), fit_efficiency(gen_t)
    if mem is None or gen is None:
        return Prediction(reason=f"needs converged C_mem runs ({len(mem_t)}) and > {TRIGONOMETRIC:.0%} trigonometric C_gen runs "
                                 f"({len(gen_t)}) over >= 2 dataset sizes each")
    flags = {"gen_depends_on_D": abs(gen.slope_D) > GEN_D_SIGMAS * gen.slope_D_se, "mem": asdict(mem), "gen": asdict(gen)}
    if not ungrok_runs:
        return Prediction(reason="no converged ungrok runs to observe D_crit", **flags)
    observed, by_wd = observed_dcrit(ungrok_runs)
    if not np.isfinite(observed):
        return Prediction(reason="the ungrok sweep never crosses test accuracy 0.5", **flags)
    logits = operating_logits(ungrok_runs, observed)
    if not len(logits):
        return Prediction(reason=f"no converged ungrok run with D' within {NEAR_TRANSITION}x of D_crit {observed:.0f}",
                          **flags)
    operating = float(np.median(logits))
    predicted = float(crossing_D(mem, gen, operating))
    if not np.isfinite(predicted):
        return Prediction(reason=f"no crossing: C_mem's norm does not grow with D faster than C_gen's "
                                 f"(c_mem {mem.slope_D:.3f}, c_gen {gen.slope_D:.3f})", **flags)
    rng = np.random.default_rng(seed)
    seeds = {s: [r for r in ungrok_runs if r.hparams["seed"] == s] for s in {r.hparams["seed"] for r in ungrok_runs}}
    draws = []
    for _ in range(BOOTSTRAP):
        m = fit_efficiency(mem_t[rng.integers(0, len(mem_t), len(mem_t))])
        g = fit_efficiency(gen_t[rng.integers(0, len(gen_t), len(gen_t))])
        chosen = [seeds[s] for s in rng.choice(list(seeds), len(seeds))]
        obs, _ = observed_dcrit([r for group in chosen for r in group])
        if m is not None and g is not None and np.isfinite(obs):
            pred = float(crossing_D(m, g, operating))
            draws.append((pred, pred / obs))
    draws = np.array([d for d in draws if np.isfinite(d[0])]).reshape(-1, 2)
    interval = lambda column: tuple(np.percentile(draws[:, column], [16, 84])) if len(draws) else (np.nan, np.nan)  # noqa: E731
    sizes = np.geomspace(min(mem_t[:, 2].min(), gen_t[:, 2].min(), observed) / 2,
                         max(mem_t[:, 2].max(), gen_t[:, 2].max(), observed) * 2, 50)
    return Prediction(
        predicted=predicted, predicted_interval=interval(0), observed=observed, observed_by_wd=by_wd,
        ratio=predicted / observed, ratio_interval=interval(1),
        logit_range=(float(logits.min()), float(logits.max())),
        across_logits=tuple(float(crossing_D(mem, gen, o)) for o in (logits.min(), logits.max())),
        extrapolated=not (mem_t[:, 2].min() <= predicted <= mem_t[:, 2].max()),
        per_seed=_per_seed(mem, gen_runs, ungrok_runs), **flags,
        curves={"D": sizes.tolist(), "logit": operating,
                "mem_norm": np.exp(mem.log_norm(operating, sizes)).tolist(),
                "gen_norm": np.exp(gen.log_norm(operating, sizes)).tolist()},
    )


def _per_seed(mem: Efficiency, gen_runs: list[Run], ungrok_runs: list[Run]) -> list[dict]:
    """Per seed with both a C_gen-only run and ungrok runs: C_gen's fit shifted by that seed's mean
    residual (its own efficiency), C_mem's shared, at that seed's operating logit; observed: where
    that seed's final test accuracy crosses 0.5 (geometric mean over weight decays)."""
    gen_t = efficiency_triples(gen_runs)
    gen = fit_efficiency(gen_t)
    out = []
    for s in sorted({r.hparams["seed"] for r in gen_runs} & {r.hparams["seed"] for r in ungrok_runs}):
        mine = efficiency_triples([r for r in gen_runs if r.hparams["seed"] == s])
        seed_runs = [r for r in ungrok_runs if r.hparams["seed"] == s]
        crossings = [crossing_point(t.sizes, t.seed_acc[s], 0.5) for t in transitions(seed_runs) if s in t.seed_acc]
        crossings = [c for c in crossings if np.isfinite(c)]
        if gen is None or not len(mine) or not crossings:
            continue
        observed = float(np.exp(np.mean(np.log(crossings))))
        logits = operating_logits(seed_runs, observed)
        if not len(logits):
            continue
        shift = float(np.mean(np.log(mine[:, 1]) - gen.log_norm(mine[:, 0], mine[:, 2])))
        shifted = Efficiency(**{**asdict(gen), "intercept": gen.intercept + shift})
        out.append({"seed": int(s), "predicted": float(crossing_D(mem, shifted, float(np.median(logits)))),
                    "observed": observed})
    return out

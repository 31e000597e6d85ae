"""Numbers from runs: convergence values, efficiency slopes, the ungrokking transition, semi-grokking,
and the paper's predictions P1-P4 as measured claims with stated thresholds.

Everything here reads :class:`grokpipe.store.Run` objects (numpy only, no torch), so the figures
and ``grokpipe claims`` compute the same numbers the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .store import Run

CONVERGED_EVALS = 5  # "final" = mean of the last evaluations: accuracy jitters near transitions


def final(run: Run, metric: str) -> float:
    return run.final(metric, CONVERGED_EVALS)


def runs_where(runs: list[Run], **params) -> list[Run]:
    return [r for r in runs if all(np.isclose(r.params.get(k), v) if isinstance(v, float) else r.params.get(k) == v
                                   for k, v in params.items())]


def group_by(runs: list[Run], key: str) -> dict:
    out: dict = {}
    for r in runs:
        out.setdefault(r.params[key], []).append(r)
    return dict(sorted(out.items()))


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


def crossing_point(sizes: np.ndarray, acc: np.ndarray, level: float) -> float:
    """The D where accuracy (rising with D) first crosses ``level``, interpolated in log D; NaN if never."""
    sizes, acc = np.asarray(sizes, float), np.asarray(acc, float)
    for i in range(len(sizes) - 1):
        a, b = acc[i], acc[i + 1]
        if a < level <= b:
            t = (level - a) / (b - a)
            return float(np.exp(np.log(sizes[i]) + t * (np.log(sizes[i + 1]) - np.log(sizes[i]))))
    return float("nan")


def transitions(runs: list[Run]) -> list[Transition]:
    out = []
    for wd, group in group_by(runs, "weight_decay").items():
        sizes = np.array(sorted({r.params["n_train"] for r in group}))
        seeds = sorted({r.params["seed"] for r in group})
        seed_acc = {s: np.full(len(sizes), np.nan) for s in seeds}
        for r in group:
            seed_acc[r.params["seed"]][np.searchsorted(sizes, r.params["n_train"])] = final(r, "test_acc")
        mean = np.nanmean(np.vstack(list(seed_acc.values())), axis=0)
        out.append(Transition(float(wd), sizes, mean, seed_acc))
    return out


# ---------------------------------------------------------------- efficiency


@dataclass(frozen=True)
class Efficiency:
    """log(param norm) = a + b log(logit) + c log(D), fitted over converged single-circuit runs.

    ``c`` is how much more parameter norm the circuit needs for the same logit as D grows."""

    n_runs: int
    slope_D: float
    slope_D_se: float
    slope_logit: float
    bucket_slopes: list  # per geometric logit bucket: d log(norm) / d log(D)


def efficiency_triples(runs: list[Run]) -> np.ndarray:
    """(correct logit, parameter norm, D) at convergence, one row per run with a positive logit."""
    rows = [(final(r, "train_logit"), final(r, "param_norm"), r.params["n_train"]) for r in runs]
    rows = [row for row in rows if np.isfinite(row[0]) and row[0] > 0]
    return np.array(rows, dtype=float).reshape(-1, 3)


def logit_buckets(logits: np.ndarray, count: int = 6) -> np.ndarray:
    """Geometric bucket edges spanning the logits."""
    return np.geomspace(logits.min(), logits.max() * (1 + 1e-9), count + 1)


def efficiency(runs: list[Run]) -> Efficiency | None:
    t = efficiency_triples(runs)
    if len(t) < 4 or len(np.unique(t[:, 2])) < 2:
        return None
    X = np.column_stack([np.ones(len(t)), np.log(t[:, 0]), np.log(t[:, 2])])
    y = np.log(t[:, 1])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = max(len(t) - 3, 1)
    cov = (resid @ resid / dof) * np.linalg.pinv(X.T @ X)
    slopes = []
    edges = logit_buckets(t[:, 0])
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = t[(t[:, 0] >= lo) & (t[:, 0] < hi)]
        if len(np.unique(inside[:, 2])) >= 2:
            slopes.append(float(np.polyfit(np.log(inside[:, 2]), np.log(inside[:, 1]), 1)[0]))
    return Efficiency(len(t), float(coef[2]), float(np.sqrt(cov[2, 2])), float(coef[1]), slopes)


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
    test_acc_when_fitted: float  # test accuracy when train accuracy first reached 0.99
    late_range: float  # max - min of test accuracy over the last PLATEAU_FRACTION of training
    semi: bool  # fitted early, then rose to a middling (not full) accuracy, and stayed there


SEMI_BAND = (0.2, 0.85)
SEMI_RISE = 0.1
PLATEAU_FRACTION = 0.25  # semi-grokking is a middling accuracy at convergence, not a run caught mid-grok
PLATEAU_RANGE = 0.1


def semigrok_status(run: Run) -> SemiGrok:
    fitted = first_step(run, "train_acc", 0.99)
    test = run.curves["test_acc"]
    at_fit = float(test[np.searchsorted(run.eval_step, fitted)]) if np.isfinite(fitted) else float("nan")
    final_test = final(run, "test_acc")
    late = test[run.eval_step >= (1 - PLATEAU_FRACTION) * run.eval_step[-1]]
    late_range = float(late.max() - late.min()) if len(late) else float("nan")
    semi = (
        final(run, "train_acc") >= 0.99
        and SEMI_BAND[0] <= final_test <= SEMI_BAND[1]
        and np.isfinite(at_fit)
        and final_test - at_fit >= SEMI_RISE
        and late_range <= PLATEAU_RANGE
    )
    return SemiGrok(run.run_id, int(run.params["n_train"]), int(run.params["seed"]), final_test, at_fit,
                    late_range, bool(semi))


# ---------------------------------------------------------------- claims


@dataclass
class Claim:
    id: str
    statement: str
    measured: str
    threshold: str
    verdict: str  # PASS, FAIL or NOT RUN
    numbers: dict

    def as_dict(self) -> dict:
        return asdict(self)


def _not_run(cid, statement, threshold, why):
    return Claim(cid, statement, why, threshold, "NOT RUN", {})


P2_MAX_FACTOR = 5.0
P3_MAX_RATIO = 1.3
P1_MIN_SIGMAS = 2.0
GROK_MIN_DELAY = 3.0


def claim_grokking(runs: list[Run]) -> Claim:
    statement = "Grokking: test accuracy reaches 0.99 long after train accuracy does (D >> D_crit)"
    threshold = f"median (steps to test acc 0.99) / (steps to train acc 0.99) >= {GROK_MIN_DELAY}"
    if not runs:
        return _not_run("grokking", statement, threshold, "no grok runs")
    ratios, rows = [], []
    for r in runs:
        train, test = first_step(r, "train_acc", 0.99), first_step(r, "test_acc", 0.99)
        rows.append({"run": r.run_id, "steps_to_train_0.99": train, "steps_to_test_0.99": test})
        ratios.append(test / max(train, 1) if np.isfinite(test) and np.isfinite(train) else np.inf)
    median = float(np.median(ratios))
    verdict = "PASS" if median >= GROK_MIN_DELAY and np.isfinite(median) else "FAIL"
    measured = f"median delay ratio {median:.1f} over {len(runs)} runs" if np.isfinite(median) else \
        "test accuracy never reached 0.99 in some runs"
    return Claim("grokking", statement, measured, threshold, verdict, {"runs": rows, "median_ratio": median})


def claim_p1(mem_runs: list[Run], gen_runs: list[Run]) -> Claim:
    statement = ("P1 efficiency: at a fixed logit, C_mem needs more parameter norm as D grows; "
                 "C_gen needs the same norm at every D")
    threshold = (f"C_mem: slope c of log(norm) on log(D) at fixed log(logit) > {P1_MIN_SIGMAS:g} standard errors "
                 f"above 0; C_gen: |c| below C_mem's c and within {P1_MIN_SIGMAS:g} standard errors of 0")
    gen_only = [r for r in gen_runs if final(r, "trig_fraction") > 0.95]
    mem, gen = efficiency(mem_runs), efficiency(gen_only)
    if mem is None or gen is None:
        return _not_run("P1", statement, threshold,
                        f"too few converged runs (C_mem {len(mem_runs)}, C_gen with > 95% trig norm {len(gen_only)} "
                        f"of {len(gen_runs)})")
    mem_ok = mem.slope_D > P1_MIN_SIGMAS * mem.slope_D_se
    gen_ok = abs(gen.slope_D) < mem.slope_D and abs(gen.slope_D) < P1_MIN_SIGMAS * max(gen.slope_D_se, 1e-12)
    measured = (f"C_mem c = {mem.slope_D:.3f} ± {mem.slope_D_se:.3f} ({mem.n_runs} runs); "
                f"C_gen c = {gen.slope_D:.3f} ± {gen.slope_D_se:.3f} ({gen.n_runs} runs, "
                f"{len(gen_only)}/{len(gen_runs)} had > 95% trig norm)")
    return Claim("P1", statement, measured, threshold, "PASS" if mem_ok and gen_ok else "FAIL",
                 {"mem": asdict(mem), "gen": asdict(gen)})


def claim_p2(ungrok_runs: list[Run]) -> Claim:
    statement = "P2 ungrokking is a phase transition: final test accuracy falls sharply from > 0.9 to < 0.2 as D' shrinks"
    threshold = f"for every weight decay, D'(acc 0.9) / D'(acc 0.2) <= {P2_MAX_FACTOR:g} (mean over seeds, log-interpolated)"
    if not ungrok_runs:
        return _not_run("P2", statement, threshold, "no ungrok runs")
    factors = {}
    for t in transitions(ungrok_runs):
        factors[t.weight_decay] = t.crossing(0.9) / t.crossing(0.2)
    ok = all(np.isfinite(f) and f <= P2_MAX_FACTOR for f in factors.values())
    measured = "; ".join(f"wd {wd:g}: {f:.2f}x" if np.isfinite(f) else f"wd {wd:g}: no full 0.2-0.9 span"
                         for wd, f in factors.items())
    return Claim("P2", statement, measured, threshold, "PASS" if ok else "FAIL", {"factor_by_wd": factors})


def claim_p3(ungrok_runs: list[Run]) -> Claim:
    statement = "P3 the transition's location (D_crit, where final test accuracy crosses 0.5) does not depend on weight decay"
    threshold = f"max / min of D_crit across weight decays <= {P3_MAX_RATIO:g}, with >= 3 weight decays"
    ts = transitions(ungrok_runs)
    if len(ts) < 3:
        return _not_run("P3", statement, threshold, f"{len(ts)} weight decay(s) run; need 3")
    d_crit = {t.weight_decay: t.crossing(0.5) for t in ts}
    values = np.array(list(d_crit.values()))
    if not np.all(np.isfinite(values)):
        return Claim("P3", statement, "accuracy never crosses 0.5 for some weight decay", threshold, "FAIL",
                     {"d_crit_by_wd": d_crit})
    ratio = float(values.max() / values.min())
    measured = ", ".join(f"wd {wd:g}: {d:.0f}" for wd, d in d_crit.items()) + f" (max/min {ratio:.2f})"
    return Claim("P3", statement, measured, threshold, "PASS" if ratio <= P3_MAX_RATIO else "FAIL",
                 {"d_crit_by_wd": d_crit, "ratio": ratio})


def claim_p4(semigrok_runs: list[Run]) -> Claim:
    statement = "P4 semi-grokking occurs: from a random start, at D near D_crit, test accuracy rises late to a middling value"
    threshold = (f"at least one run with final train acc >= 0.99, final test acc in [{SEMI_BAND[0]}, {SEMI_BAND[1]}], "
                 f">= {SEMI_RISE} above the test accuracy it had when it first fitted the training set, and settled: "
                 f"test accuracy within {PLATEAU_RANGE} over the last {PLATEAU_FRACTION:.0%} of training")
    if not semigrok_runs:
        return _not_run("P4", statement, threshold, "no semigrok runs")
    status = [semigrok_status(r) for r in semigrok_runs]
    semi = [s for s in status if s.semi]
    middling = [s for s in status if SEMI_BAND[0] <= s.final_test_acc <= SEMI_BAND[1] and not s.semi]
    finals = ", ".join(f"{s.final_test_acc:.2f}" for s in semi)
    measured = f"{len(semi)} of {len(status)} runs semi-grokked" + (f" (final test accuracy {finals})" if semi else "")
    if middling:
        measured += (f"; {len(middling)} more ended at middling accuracy still changing (range "
                     + ", ".join(f"{s.late_range:.2f}" for s in middling) + " over the last quarter): not converged")
    return Claim("P4", statement, measured, threshold, "PASS" if semi else "FAIL",
                 {"runs": [asdict(s) for s in status]})


def all_claims(runs_by_experiment: dict[str, list[Run]]) -> list[Claim]:
    get = runs_by_experiment.get
    return [
        claim_grokking(get("grok", [])),
        claim_p1(get("efficiency_mem", []), get("efficiency_gen", [])),
        claim_p2(get("ungrok", [])),
        claim_p3(get("ungrok", [])),
        claim_p4(get("semigrok", [])),
    ]


def claims_markdown(claims: list[Claim], scale: str = "") -> str:
    lines = [f"# Claims{f' ({scale} scale)' if scale else ''}", "",
             "Each prediction of the paper, measured on this run's results and judged by the stated threshold.",
             "Nothing here is hard-coded: re-run `grokpipe claims` on other results and the verdicts follow.", "",
             "| claim | verdict | measured | threshold |", "| --- | --- | --- | --- |"]
    for c in claims:
        lines.append(f"| {c.id} | **{c.verdict}** | {c.measured} | {c.threshold} |")
    lines.append("")
    for c in claims:
        lines += [f"## {c.id}: {c.verdict}", "", c.statement, "", f"- measured: {c.measured}", f"- threshold: {c.threshold}", ""]
    return "\n".join(lines)

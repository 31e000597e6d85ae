"""The paper's predictions as measured claims: each with its number, a threshold stated beside it,
and PASS / FAIL / NOT RUN. Nothing is hard-coded: the verdicts follow from the runs given.

Claims judge converged runs (grokpipe.convergence) and say how many were left out; the report
states which trainer made the runs and warns when they mix trainer versions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .analysis import (
    CHANCE,
    FITTED,
    FULL,
    PLATEAU_FRACTION,
    PLATEAU_RANGE,
    SEMI_BAND,
    SEMI_RISE,
    TRIGONOMETRIC,
    efficiency,
    first_step,
    group_by,
    pretrain_held_out,
    semigrok_status,
    split_converged,
    transitions,
    trigonometric_only,
)
from .convergence import CRITERION
from .dcrit import DCRIT_MAX_FACTOR, observed_dcrit, predict_dcrit
from .files import markdown_tag
from .store import Run
from .tasks import TASKS

P2_MAX_FACTOR = 5.0
P3_MAX_RATIO = 1.3
P1_MIN_SIGMAS = 2.0
GROK_MIN_DELAY = 3.0
P3_MIN_WEIGHT_DECAYS = 3


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


def _left_out(unconverged: list[Run], total: int) -> str:
    return f"; {len(unconverged)} of {total} runs had not converged and were left out" if unconverged else ""


def claim_grokking(runs: list[Run]) -> Claim:
    statement = f"Grokking: test accuracy reaches {FITTED} long after train accuracy does (D >> D_crit)"
    threshold = f"median (steps to test acc {FITTED}) / (steps to train acc {FITTED}) >= {GROK_MIN_DELAY}"
    if not runs:
        return _not_run("grokking", statement, threshold, "no grok runs")
    ratios, rows = [], []
    for r in runs:
        train, test = first_step(r, "train_acc", FITTED), first_step(r, "test_acc", FITTED)
        rows.append({"run": r.run_id, "steps_to_train_fit": train, "steps_to_test_fit": test})
        ratios.append(test / max(train, 1) if np.isfinite(test) and np.isfinite(train) else np.inf)
    median = float(np.median(ratios))
    verdict = "PASS" if median >= GROK_MIN_DELAY and np.isfinite(median) else "FAIL"
    measured = f"median delay ratio {median:.1f} over {len(runs)} runs" if np.isfinite(median) else \
        f"test accuracy never reached {FITTED} in some runs"
    return Claim("grokking", statement, measured, threshold, verdict, {"runs": rows, "median_ratio": median})


def claim_p1(mem_runs: list[Run], gen_runs: list[Run]) -> Claim:
    statement = ("P1 efficiency: at a fixed logit, C_mem needs more parameter norm as D grows; "
                 "C_gen needs the same norm at every D")
    threshold = (f"C_mem: slope c of log(norm) on log(D) at fixed log(logit) > {P1_MIN_SIGMAS:g} standard errors "
                 f"above 0; C_gen: |c| below C_mem's c and within {P1_MIN_SIGMAS:g} standard errors of 0")
    mem_ok_runs, mem_out = split_converged(mem_runs)
    gen_ok_runs, gen_out = split_converged(gen_runs)
    gen_only = trigonometric_only(gen_ok_runs)
    mem, gen = efficiency(mem_ok_runs), efficiency(gen_only)
    if mem is None or gen is None:
        return _not_run("P1", statement, threshold,
                        f"too few converged runs over >= 2 dataset sizes (C_mem {len(mem_ok_runs)} of {len(mem_runs)}, "
                        f"C_gen with > {TRIGONOMETRIC:.0%} trig norm {len(gen_only)} of {len(gen_runs)})")
    mem_ok = mem.slope_D > P1_MIN_SIGMAS * mem.slope_D_se
    gen_ok = abs(gen.slope_D) < mem.slope_D and abs(gen.slope_D) < P1_MIN_SIGMAS * max(gen.slope_D_se, 1e-12)
    low, high = gen.norm_range
    measured = (f"C_mem c = {mem.slope_D:.3f} ± {mem.slope_D_se:.3f} ({mem.n_runs} runs); "
                f"C_gen c = {gen.slope_D:.3f} ± {gen.slope_D_se:.3f} ({gen.n_runs} runs, "
                f"{len(gen_only)}/{len(gen_ok_runs)} converged runs had > {TRIGONOMETRIC:.0%} trig norm; "
                f"their parameter norms span {low:.2f}-{high:.2f}, {high / low:.3f}x)"  # 3 decimals: 1.297 is not 1.30
                + _left_out(mem_out + gen_out, len(mem_runs) + len(gen_runs)))
    return Claim("P1", statement, measured, threshold, "PASS" if mem_ok and gen_ok else "FAIL",
                 {"mem": asdict(mem), "gen": asdict(gen), "unconverged": len(mem_out) + len(gen_out)})


def claim_p2(ungrok_runs: list[Run], cid: str = "P2", what: str = "") -> Claim:
    statement = (f"P2 ungrokking is a phase transition{what}: final test accuracy falls sharply from > {FULL} to "
                 f"< {CHANCE} as D' shrinks")
    threshold = (f"for every weight decay, D'(acc {FULL}) / D'(acc {CHANCE}) <= {P2_MAX_FACTOR:g} "
                 "(mean over seeds of converged runs, log-interpolated)")
    if not ungrok_runs:
        return _not_run(cid, statement, threshold, "no ungrok runs")
    runs, left_out = split_converged(ungrok_runs)
    factors = {t.weight_decay: t.crossing(FULL) / t.crossing(CHANCE) for t in transitions(runs)}
    ok = bool(factors) and all(np.isfinite(f) and f <= P2_MAX_FACTOR for f in factors.values())
    measured = "; ".join(f"wd {wd:g}: {f:.2f}x" if np.isfinite(f) else f"wd {wd:g}: no full {CHANCE}-{FULL} span"
                         for wd, f in factors.items()) or "no converged runs"
    return Claim(cid, statement, measured + _left_out(left_out, len(ungrok_runs)), threshold,
                 "PASS" if ok else "FAIL", {"factor_by_wd": factors, "unconverged": len(left_out)})


def claim_p3(ungrok_runs: list[Run], cid: str = "P3", what: str = "") -> Claim:
    statement = (f"P3 the transition's location{what} (D_crit, where final test accuracy crosses 0.5) does not "
                 "depend on weight decay")
    threshold = f"max / min of D_crit across weight decays <= {P3_MAX_RATIO:g}, with >= {P3_MIN_WEIGHT_DECAYS} weight decays"
    runs, left_out = split_converged(ungrok_runs)
    ts = transitions(runs)
    if len(ts) < P3_MIN_WEIGHT_DECAYS:
        return _not_run(cid, statement, threshold, f"{len(ts)} weight decay(s) with converged runs; need "
                                                   f"{P3_MIN_WEIGHT_DECAYS}" + _left_out(left_out, len(ungrok_runs)))
    d_crit = {t.weight_decay: t.crossing(0.5) for t in ts}
    values = np.array(list(d_crit.values()))
    if not np.all(np.isfinite(values)):
        return Claim(cid, statement, "accuracy never crosses 0.5 for some weight decay" +
                     _left_out(left_out, len(ungrok_runs)), threshold, "FAIL", {"d_crit_by_wd": d_crit})
    ratio = float(values.max() / values.min())
    measured = ", ".join(f"wd {wd:g}: {d:.0f}" for wd, d in d_crit.items()) + f" (max/min {ratio:.2f})"
    return Claim(cid, statement, measured + _left_out(left_out, len(ungrok_runs)), threshold,
                 "PASS" if ratio <= P3_MAX_RATIO else "FAIL",
                 {"d_crit_by_wd": d_crit, "ratio": ratio, "unconverged": len(left_out)})


def claim_p4(semigrok_runs: list[Run], band: dict | None = None, ungrok_runs: list[Run] = ()) -> Claim:
    """P4, with what the other band runs did and, when the ungrok sweep observed D_crit, where the
    first stage's turn lies against it: semi-grokking is expected near D_crit, while the first stage
    finds where runs of its step budget turn from chance to full accuracy, which lies higher when
    grokking near D_crit takes longer than that budget."""
    statement = "P4 semi-grokking occurs: from a random start, at D near D_crit, test accuracy rises late to a middling value"
    threshold = (f"at least one run with final train acc >= {FITTED}, final test acc in [{SEMI_BAND[0]}, {SEMI_BAND[1]}], "
                 f">= {SEMI_RISE} above the test accuracy it had when it first fitted the training set, and settled: "
                 f"test accuracy within {PLATEAU_RANGE} over the last {PLATEAU_FRACTION:.0%} of training")
    searched = ""
    d_crit = observed_dcrit(split_converged(ungrok_runs)[0])[0]  # NaN without an ungrok sweep
    if band is not None:
        searched = (f"; band searched by the first stage: D {band['searched']}, turn found at "
                    + (f"D {band['low']}-{band['high']}" if band.get("sizes") else "no D (no seed turned from chance "
                                                                                   "to full accuracy)"))
        if band.get("sizes") and np.isfinite(d_crit):
            searched += f", {band['low'] / d_crit:.1f}-{band['high'] / d_crit:.1f}x the ungrokking D_crit ({d_crit:.0f})"
    if not semigrok_runs:
        return _not_run("P4", statement, threshold, "no semigrok runs" + searched)
    status = [semigrok_status(r) for r in semigrok_runs]
    semi = [s for s in status if s.semi]
    middling = [s for s in status if SEMI_BAND[0] <= s.final_test_acc <= SEMI_BAND[1] and not s.semi]
    grokked = sum(s.final_test_acc >= FULL for s in status)
    stayed = sum(s.final_test_acc < SEMI_BAND[0] for s in status)
    sizes = sorted({s.n_train for s in status})
    finals = ", ".join(f"{s.final_test_acc:.2f} (D {s.n_train})" for s in semi)
    measured = (f"{len(semi)} of {len(status)} runs at D {sizes[0]}-{sizes[-1]} semi-grokked"
                + (f" (final test accuracy {finals})" if semi else "")
                + f"; {grokked} grokked fully (final test acc >= {FULL}), {stayed} stayed below {SEMI_BAND[0]}")
    if middling:
        measured += (f"; {len(middling)} more ended at middling accuracy still changing (range "
                     + ", ".join(f"{s.late_range:.2f}" for s in middling) + " over the last quarter): not converged")
    return Claim("P4", statement, measured + searched, threshold, "PASS" if semi else "FAIL",
                 {"runs": [asdict(s) for s in status], "band": band, "ungrok_d_crit": d_crit})


def claim_dcrit(mem_runs: list[Run], gen_runs: list[Run], ungrok_runs: list[Run]) -> Claim:
    statement = ("Beyond the paper: D_crit predicted from the measured circuit efficiencies (where C_mem needs the "
                 "norm C_gen needs for the same logit) agrees with the observed ungrokking transition")
    threshold = f"predicted / observed D_crit within a factor {DCRIT_MAX_FACTOR:g} (either way)"
    prediction = predict_dcrit(mem_runs, gen_runs, ungrok_runs)
    if prediction.reason:
        return _not_run("D_crit", statement, threshold, prediction.reason)
    ratio, (low, high) = prediction.ratio, prediction.ratio_interval
    direction = "over" if ratio > 1 else "under"
    measured = (f"predicted {prediction.predicted:.0f} (68% interval {prediction.predicted_interval[0]:.0f}-"
                f"{prediction.predicted_interval[1]:.0f}, over operating logits {prediction.logit_range[0]:.1f}-"
                f"{prediction.logit_range[1]:.1f}: {prediction.across_logits[0]:.0f}-{prediction.across_logits[1]:.0f}); "
                f"observed {prediction.observed:.0f}; ratio {ratio:.2f} ({low:.2f}-{high:.2f}), "
                f"{direction}estimates by {max(ratio, 1 / ratio):.2f}x")
    return Claim("D_crit", statement, measured, threshold, "PASS" if prediction.agrees else "FAIL",
                 prediction.as_dict())


def pretraining_failed(pretrain_runs: list[Run], task: str) -> str:
    """Why ungrokking from this task's pretrained models is not an ungrokking experiment (their
    held-out accuracy stayed below FITTED), or "" when they had generalised (or held out nothing)."""
    held_out = pretrain_held_out(pretrain_runs, task)
    if held_out is not None and held_out < FITTED:
        return (f"pretraining did not generalise (held-out accuracy {held_out:.3f} < {FITTED}): "
                "its ungrok runs start from memorisation, not from a grokked model")
    return ""


def _ungrok_claims(runs: list[Run], pretrain: list[Run], suffix: str = "", what: str = "") -> list[Claim]:
    """P2 and P3 of one ungrok sweep; NOT RUN when its pretrained models had not generalised."""
    claims = [claim_p2(runs, "P2" + suffix, what), claim_p3(runs, "P3" + suffix, what)]
    failed = pretraining_failed(pretrain, runs[0].hparams["task"]) if runs else ""
    return [_not_run(c.id, c.statement, c.threshold, failed) if failed else c for c in claims]


def all_claims(runs_by_experiment: dict[str, list[Run]], band: dict | None = None) -> list[Claim]:
    get = runs_by_experiment.get
    claims = [
        claim_grokking(get("grok", [])),
        claim_p1(get("efficiency_mem", []), get("efficiency_gen", [])),
        *_ungrok_claims(get("ungrok", []), get("pretrain", [])),
        claim_p4(get("semigrok", []), band, get("ungrok", [])),
        claim_dcrit(get("efficiency_mem", []), get("efficiency_gen", []), get("ungrok", [])),
    ]
    for task, runs in group_by(get("ungrok_tasks", []), "task").items():
        claims += _ungrok_claims(runs, get("pretrain", []), f" {task}", f" on {TASKS[task].formula}")
    return claims


def claims_markdown(claims: list[Claim], provenance: dict | None = None, scale: str = "") -> str:
    lines = [markdown_tag("claims"), f"# Claims{f' ({scale} scale)' if scale else ''}", "",
             "Each prediction of the paper, measured on this run's results and judged by the stated threshold.",
             "Nothing here is hard-coded: re-run `grokpipe claims` on other results and the verdicts follow.",
             f"Runs count as converged when {CRITERION.describe()}.", ""]
    if provenance:
        if provenance["mixed"]:
            lines += ["> **Warning: these runs were made by different trainers"
                      + (" with different numerics versions" if provenance["numerics_mixed"] else "")
                      + ".** Re-run the pipeline so that every shard comes from one version.", ""]
        lines += ["Runs made by: " + "; ".join(f"{label} ({n} runs)" for label, n in provenance["trainers"].items())
                  + (". On: " + "; ".join(provenance["devices"]) if provenance["devices"] else "") + ".", ""]
    lines += ["| claim | verdict | measured | threshold |", "| --- | --- | --- | --- |"]
    for c in claims:
        lines.append(f"| {c.id} | **{c.verdict}** | {c.measured} | {c.threshold} |")
    lines.append("")
    for c in claims:
        lines += [f"## {c.id}: {c.verdict}", "", c.statement, "", f"- measured: {c.measured}", f"- threshold: {c.threshold}", ""]
    return "\n".join(lines)

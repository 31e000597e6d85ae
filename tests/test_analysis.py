"""Analysis on synthetic runs whose answers are known."""

import numpy as np
import pytest

from grokpipe.analysis import claim_p2, claim_p3, claim_p4, crossing_point, efficiency, semigrok_status, transitions
from grokpipe.store import Run


def _run(n_train, wd, seed, test_acc, train_acc=None, steps=None, **extra):
    test_acc = np.asarray(test_acc, float)
    steps = np.arange(len(test_acc)) * 100 if steps is None else steps
    curves = {"test_acc": test_acc, "train_acc": np.ones_like(test_acc) if train_acc is None else train_acc, **extra}
    return Run(f"r{n_train}-{wd}-{seed}", {"n_train": n_train, "weight_decay": wd, "seed": seed}, steps, curves)


def _ungrok_runs(d_crit_by_wd, sizes=(100, 150, 220, 330, 500, 750, 1100), width=0.35):
    runs = []
    for wd, d_crit in d_crit_by_wd.items():
        for seed in (0, 1):
            for d in sizes:
                acc = 1 / (1 + np.exp(-(np.log(d) - np.log(d_crit)) / width * 3))
                runs.append(_run(d, wd, seed, [1.0] * 5 + [acc] * 5))
    return runs


def test_crossing_point_interpolates_in_log_d():
    assert crossing_point([100, 400], [0.0, 1.0], 0.5) == pytest.approx(200.0)
    assert np.isnan(crossing_point([100, 400], [0.6, 1.0], 0.5))


def test_d_crit_is_recovered_per_weight_decay_and_p3_judges_its_spread():
    runs = _ungrok_runs({0.5: 300, 1.0: 300, 2.0: 300})
    d_crit = {t.weight_decay: t.crossing(0.5) for t in transitions(runs)}
    assert all(v == pytest.approx(300, rel=0.05) for v in d_crit.values())
    assert claim_p3(runs).verdict == "PASS"
    assert claim_p3(_ungrok_runs({0.5: 200, 1.0: 300, 2.0: 450})).verdict == "FAIL"
    assert claim_p3(_ungrok_runs({1.0: 300})).verdict == "NOT RUN"


def test_p2_tells_a_sharp_transition_from_a_gradual_one():
    assert claim_p2(_ungrok_runs({1.0: 300}, width=0.3)).verdict == "PASS"
    gradual = _ungrok_runs({1.0: 300}, sizes=(10, 30, 100, 300, 1000, 3000, 10000), width=3.0)
    assert claim_p2(gradual).verdict == "FAIL"


def test_semigrokking_needs_a_late_rise_to_a_settled_middling_accuracy():
    settled = _run(800, 1.0, 0, [0.05] * 20 + list(np.linspace(0.05, 0.6, 20)) + [0.6] * 40)
    climbing = _run(800, 1.0, 1, [0.05] * 60 + list(np.linspace(0.05, 0.6, 20)))
    never = _run(800, 1.0, 2, [0.05] * 80)
    full = _run(800, 1.0, 3, [0.05] * 20 + [1.0] * 60)
    assert semigrok_status(settled).semi
    assert not semigrok_status(climbing).semi  # caught mid-grok, not converged
    assert not semigrok_status(never).semi and not semigrok_status(full).semi
    claim = claim_p4([settled, climbing, never, full])
    assert claim.verdict == "PASS" and "1 of 4" in claim.measured and "still changing" in claim.measured
    assert claim_p4([climbing, never]).verdict == "FAIL"


def test_efficiency_slope_recovers_the_dependence_on_d():
    rng = np.random.default_rng(0)
    runs = []
    for i, (d, logit) in enumerate((d, l) for d in (200, 400, 800) for l in (20, 30, 45)):
        norm = 3 * logit**0.5 * (d / 200) ** 0.2 * np.exp(rng.normal(0, 0.01))
        runs.append(_run(d, 1.0, i, [0.0] * 5, train_logit=np.full(5, float(logit)), param_norm=np.full(5, norm)))
    fit = efficiency(runs)
    assert fit.slope_D == pytest.approx(0.2, abs=0.02) and fit.slope_logit == pytest.approx(0.5, abs=0.05)

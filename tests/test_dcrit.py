"""D_crit predicted from efficiencies, on synthetic runs with a known crossing."""

import numpy as np
import pytest

from grokpipe.dcrit import Prediction, crossing_D, predict_dcrit
from grokpipe.store import Run

EVALS = 40
TRUE_DCRIT = 400.0
LOGIT = 30.0


def _run(experiment, n_train, seed, logit, norm, test_acc=0.0, trig=1.0):
    steps = np.arange(EVALS) * 100
    curves = {"train_logit": np.full(EVALS, logit), "param_norm": np.full(EVALS, norm),
              "test_acc": np.full(EVALS, test_acc), "train_acc": np.ones(EVALS), "trig_fraction": np.full(EVALS, trig)}
    return Run(f"{experiment}-{n_train}-{seed}-{logit}", {"n_train": n_train, "seed": seed, "weight_decay": 1.0}, steps,
               curves)


def _mem_norm(logit, d):  # C_mem: log P = 0.5 log o + 0.3 log D + a_m
    return np.exp(0.2 + 0.5 * np.log(logit) + 0.3 * np.log(d))


def _gen_norm(logit, d, slope_d=0.0):  # C_gen: as efficient as C_mem at TRUE_DCRIT, flat in D
    return np.exp(np.log(_mem_norm(logit, TRUE_DCRIT)) + slope_d * np.log(d / 1000))


def _world(noise=0.0, gen_slope_d=0.0, seed=0):
    rng = np.random.default_rng(seed)
    mem = [_run("mem", d, s, o, _mem_norm(o, d) * np.exp(rng.normal(0, noise)))
           for d in (100, 200, 400, 800) for o in (20.0, 30.0, 45.0) for s in (0, 1)]
    gen = [_run("gen", d, s, o, _gen_norm(o, d, gen_slope_d) * np.exp(rng.normal(0, noise)))
           for d in (1000, 1500, 2200) for o in (20.0, 30.0, 45.0) for s in (0, 1)]
    ungrok = []
    for s in (0, 1):
        for d in (150, 250, 330, 400, 480, 600, 900):
            acc = 1 / (1 + np.exp(-(np.log(d) - np.log(TRUE_DCRIT)) * 8))
            ungrok.append(_run("ungrok", d, s, LOGIT, 30.0, test_acc=acc))
    return mem, gen, ungrok


def test_a_known_crossing_is_recovered_within_two_percent():
    prediction = predict_dcrit(*_world())
    assert prediction.reason == ""
    assert prediction.predicted == pytest.approx(TRUE_DCRIT, rel=0.02)
    assert prediction.observed == pytest.approx(TRUE_DCRIT, rel=0.02)
    assert prediction.ratio == pytest.approx(1.0, rel=0.03)
    assert not prediction.gen_depends_on_D
    assert len(prediction.per_seed) == 2
    assert all(s["predicted"] == pytest.approx(TRUE_DCRIT, rel=0.02) for s in prediction.per_seed)


def test_the_uncertainty_grows_with_noise():
    width = []
    for noise in (0.01, 0.1):
        low, high = predict_dcrit(*_world(noise=noise)).predicted_interval
        width.append(np.log(high / low))
    assert width[1] > 3 * width[0]


def test_a_c_gen_fit_that_depends_on_d_is_flagged():
    assert predict_dcrit(*_world(noise=0.01, gen_slope_d=0.15)).gen_depends_on_D
    assert predict_dcrit(*_world(noise=0.01, gen_slope_d=0.3)).gen_depends_on_D  # no crossing at all: flagged too


def test_without_the_runs_it_needs_it_says_why():
    mem, gen, ungrok = _world()
    assert "C_mem" in predict_dcrit([], gen, ungrok).reason
    assert "ungrok" in predict_dcrit(mem, gen, []).reason


def test_crossing_formula_is_where_the_fits_meet():
    from grokpipe.analysis import fit_efficiency

    mem_t = np.array([(o, _mem_norm(o, d), d) for d in (100, 400) for o in (20.0, 40.0)])
    gen_t = np.array([(o, _gen_norm(o, d), d) for d in (1000, 2000) for o in (20.0, 40.0)])
    d = crossing_D(fit_efficiency(mem_t), fit_efficiency(gen_t), 25.0)
    assert float(d) == pytest.approx(TRUE_DCRIT, rel=1e-6)


@pytest.mark.parametrize("ratio, agrees", [(0.12, False), (0.7, True), (1.0, True), (1.45, True), (1.6, False)])
def test_the_prediction_agrees_within_the_stated_factor_either_way(ratio, agrees):
    # one definition, used by the claim's verdict and Fig 11's title
    assert Prediction(ratio=ratio).agrees is agrees

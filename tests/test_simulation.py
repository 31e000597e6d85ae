"""The minimal example reproduces Table 1's three behaviours; Theorem D.4 holds numerically."""

import numpy as np
import pytest

from grokpipe.simulation import (
    TABLE_1,
    minimise_equation_6,
    simulate,
    theorem_d4_prediction,
)

CASES = {c.name: c for c in TABLE_1}


def _first_step_below(curve, level):
    below = np.nonzero(curve < level)[0]
    return int(below[0]) if len(below) else None


def test_case_a_groks_test_loss_falls_long_after_train_loss():
    out = simulate(CASES["a"])
    train_fit, test_fit = _first_step_below(out["train_loss"], 0.2), _first_step_below(out["test_loss"], 0.2)
    assert train_fit is not None and test_fit is not None
    assert test_fit > 5 * train_fit
    assert out["gen_weight"][-1] > out["mem_weight"][-1]  # C_gen took over
    assert out["param_norm"][-1] < 0.7 * out["param_norm"].max()  # and the norm fell


def test_case_b_less_efficient_gen_never_overtakes_mem():
    out = simulate(CASES["b"])
    assert np.all(out["gen_weight"][1:] < out["mem_weight"][1:])
    assert out["test_loss"][-1] > 3.0


def test_case_c_equal_speeds_test_loss_falls_with_train_loss():
    out = simulate(CASES["c"])
    train_fit = _first_step_below(out["train_loss"], 0.2)
    assert out["test_loss"].max() <= out["test_loss"][0]  # test loss never rises above its start
    assert out["test_loss"][train_fit] < 2.0  # and is already low when the training set is fitted
    assert np.all(out["gen_weight"][1:] >= out["mem_weight"][1:])
    grokking = simulate(CASES["a"])  # the contrast: in case a test loss has risen when train loss is low
    assert grokking["test_loss"][_first_step_below(grokking["train_loss"], 0.2)] > grokking["test_loss"][0]


def test_theorem_d4_kappa_below_q_spreads_weight_as_predicted():
    P = np.array([1.0, 1.5, 2.0, 3.0])
    w = minimise_equation_6(P, kappa=1.0, q=2.0, steps=60_000, lr=0.05)
    predicted = theorem_d4_prediction(P, 1.0, 2.0)
    assert np.all(w > 0)
    assert w / w.sum() == pytest.approx(predicted, abs=1e-4)
    assert predicted == pytest.approx(P**-2 / (P**-2).sum())  # w_i ∝ P_i^(-q kappa / (q - kappa))


def test_theorem_d4_kappa_at_least_q_puts_all_weight_on_the_most_efficient():
    P = np.array([1.0, 1.2, 1.6, 2.5])
    w = minimise_equation_6(P, kappa=3.0, q=2.0, steps=60_000, lr=0.05)
    assert w[1:].sum() < 1e-3 * w[0]
    assert theorem_d4_prediction(P, 3.0, 2.0).tolist() == [1.0, 0.0, 0.0, 0.0]

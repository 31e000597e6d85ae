"""Appendix B's trigonometric projection on logits constructed to have known parts."""

import numpy as np
import pytest

from grokpipe.circuits import circuit_metrics, n_frequencies, trig_project
from grokpipe.tasks import make_dataset


def _cube(p, fn):
    a, b, c = np.meshgrid(*[np.arange(p)] * 3, indexing="ij")
    return fn(a, b, c).astype(np.float64)


def test_pure_trigonometric_logits_lie_wholly_in_the_subspace():
    p = 13
    Z = _cube(p, lambda a, b, c: 3 * np.cos(2 * np.pi * 2 * (a + b - c) / p) + 1.5 * np.cos(2 * np.pi * 5 * (a + b - c) / p))
    parts = trig_project(Z)
    assert parts.trig_fraction == pytest.approx(1.0)
    assert parts.gen_logit == pytest.approx(4.5)  # correct class: every cosine is 1
    assert parts.coefficients[1] == pytest.approx(3 * p**3 / 2)


def test_random_logits_have_about_K_over_p_cubed_of_their_norm_there():
    p = 11
    Z = np.random.default_rng(0).normal(size=(200, p, p, p))
    frac = trig_project(Z).trig_fraction
    # centring removes 1/p of the variance, so expect K / (p^3 (1 - 1/p))
    expected = n_frequencies(p) / (p**3 * (1 - 1 / p))
    assert frac.mean() == pytest.approx(expected, rel=0.1)


def test_a_mixture_recovers_its_trigonometric_part():
    p = 17
    trig = _cube(p, lambda a, b, c: 2 * np.cos(2 * np.pi * 3 * (a + b - c) / p))
    mem = np.random.default_rng(1).normal(scale=0.5, size=(p, p, p))
    parts = trig_project(trig + mem)
    assert parts.gen_logit == pytest.approx(2.0, abs=0.1)
    residual_profile = parts.profile - 2 * np.cos(2 * np.pi * 3 * np.arange(p) / p)
    assert np.abs(residual_profile).max() < 0.1


def test_subtraction_uses_a_minus_b_directions():
    p = 11
    Z = _cube(p, lambda a, b, c: np.cos(2 * np.pi * (a - b - c) / p))
    assert trig_project(Z, sign=-1).trig_fraction == pytest.approx(1.0)
    assert trig_project(Z, sign=+1).trig_fraction < 0.05


@pytest.mark.parametrize("task", ["add", "sub", "mul", "div"])
def test_a_perfect_lookup_table_is_trigonometric_and_memorisation_is_not(task):
    p = 13
    ds = make_dataset(task, p)
    exact = np.zeros((1, ds.n_examples, p + 2))
    exact[0, np.arange(ds.n_examples), ds.label] = 5.0
    train = np.zeros((1, ds.n_examples), bool)
    train[0, : ds.n_examples // 2] = True
    m = circuit_metrics(task, p, exact, ds.label, train)
    assert m["trig_fraction"][0] == pytest.approx(1.0)
    assert abs(m["mem_logit_train"][0]) < 1e-9 and m["gen_logit"][0] > 4
    # memorise the train half only: the test half's correct logits are absent
    memorised = exact * train[..., None]
    m = circuit_metrics(task, p, memorised, ds.label, train)
    assert m["trig_fraction"][0] < 0.7
    assert m["mem_logit_train"][0] > 0 > m["mem_logit_test"][0]


def test_tasks_without_a_known_circuit_return_none():
    ds = make_dataset("sum_squares", 7)
    assert circuit_metrics("sum_squares", 7, np.zeros((1, ds.n_examples, 9)), ds.label, np.zeros((1, 49), bool)) is None

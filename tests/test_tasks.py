import numpy as np
import pytest

from grokpipe.errors import GrokpipeError
from grokpipe.tasks import (
    TASKS,
    make_dataset,
    random_labels,
    train_indices,
    validate_task,
)


def test_all_ten_tasks_have_correct_answers():
    p = 7
    ds = make_dataset("add", p)
    assert ds.n_examples == 49 and ds.vocab == 9
    assert all(l == (x + y) % p for x, y, l in zip(ds.x, ds.y, ds.label))
    div = make_dataset("div", p)
    assert div.n_examples == 42 and all((l * y) % p == x for x, y, l in zip(div.x, div.y, div.label))
    mixed = make_dataset("div_odd_sub", p)
    for x, y, l in zip(mixed.x, mixed.y, mixed.label):
        assert (l * y) % p == x if y % 2 else l == (x - y) % p
    sq = make_dataset("sum_squares_cross", p)
    assert all(l == (x * x + x * y + y * y) % p for x, y, l in zip(sq.x, sq.y, sq.label))
    assert len(TASKS) == 13  # the paper's ten, and S4's three as the quick scale's stand-in for S5


@pytest.mark.parametrize("degree", [5, 4])
def test_permutation_tasks_are_group_compositions(degree):
    mul, conj, xyx = (make_dataset(f"s{degree}_{t}", 113) for t in ("mul", "conj", "xyx"))
    order = 120 if degree == 5 else 24
    assert mul.n_examples == order * order and mul.vocab == order + 2
    identity = 0  # the first permutation in lexicographic order is the identity
    assert np.all(mul.label[mul.x == identity] == mul.y[mul.x == identity])
    assert np.all(conj.label[conj.x == identity] == conj.y[conj.x == identity])
    # x y x^-1 with y = identity is the identity; x y x with y = identity is x x
    assert np.all(conj.label[conj.y == identity] == identity)
    assert np.all(xyx.label[xyx.y == identity] == mul.label[(mul.x == mul.y)][np.argsort(mul.x[mul.x == mul.y])])


def test_primality_is_exact_and_fast_for_any_p():
    from grokpipe.tasks import is_prime

    trial = [n for n in range(2000) if n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))]
    assert [n for n in range(2000) if is_prime(n)] == trial
    # trial division would not finish these: Miller-Rabin answers at once
    assert is_prime(2**127 - 1) and not is_prime(2**127 + 1) and not is_prime(3215031751)  # a strong pseudoprime


def test_smaller_training_sets_are_prefixes_of_larger_ones():
    small, large = train_indices("add", 11, 3, 20), train_indices("add", 11, 3, 80)
    assert np.array_equal(small, large[:20])
    assert not np.array_equal(train_indices("add", 11, 4, 20), small)


def test_random_labels_are_fixed_per_seed():
    assert np.array_equal(random_labels("add", 11, 1), random_labels("add", 11, 1))
    assert not np.array_equal(random_labels("add", 11, 1), random_labels("add", 11, 2))


@pytest.mark.parametrize("task,p,match", [("div", 12, "prime"), ("mul", 9, "prime"), ("nope", 7, "unknown task")])
def test_bad_tasks_are_refused(task, p, match):
    with pytest.raises(GrokpipeError, match=match):
        validate_task(task, p)


@pytest.mark.parametrize("n_train", [0, 50])
def test_impossible_training_set_sizes_are_refused(n_train):
    with pytest.raises(GrokpipeError, match="impossible"):
        train_indices("add", 7, 0, n_train)

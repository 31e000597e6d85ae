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
    assert len(TASKS) == 16  # the paper's ten, and the permutation tasks in S4 and A5


@pytest.mark.parametrize("group, order", [("s5", 120), ("s4", 24), ("a5", 60)])
def test_permutation_tasks_are_group_compositions(group, order):
    mul, conj, xyx = (make_dataset(f"{group}_{t}", 113) for t in ("mul", "conj", "xyx"))
    assert mul.n_examples == order * order and mul.vocab == order + 2
    identity = 0  # the first permutation in lexicographic order is the identity
    assert np.all(mul.label[mul.x == identity] == mul.y[mul.x == identity])
    assert np.all(conj.label[conj.x == identity] == conj.y[conj.x == identity])
    # x y x^-1 with y = identity is the identity; x y x with y = identity is x x
    assert np.all(conj.label[conj.y == identity] == identity)
    assert np.all(xyx.label[xyx.y == identity] == mul.label[(mul.x == mul.y)][np.argsort(mul.x[mul.x == mul.y])])


def _cycles(perm) -> int:
    seen, cycles = set(), 0
    for start in range(len(perm)):
        if start not in seen:
            cycles += 1
            while start not in seen:
                seen.add(start)
                start = perm[start]
    return cycles


def test_a5_is_the_even_permutations_of_five_composed_as_s5():
    """A5's tokens are the even permutations of 5 (parity from cycle counts, not inversions), in
    lexicographic order, and its answers compose them as S5's do."""
    import itertools

    even = [p for p in itertools.permutations(range(5)) if (5 - _cycles(p)) % 2 == 0]
    index = {p: i for i, p in enumerate(even)}
    mul, conj, xyx = (make_dataset(f"a5_{t}", 113) for t in ("mul", "conj", "xyx"))
    compose = lambda a, b: tuple(a[b[k]] for k in range(5))  # noqa: E731
    inverse = lambda a: tuple(sorted(range(5), key=lambda k: a[k]))  # noqa: E731
    for x, y, l_mul, l_conj, l_xyx in zip(mul.x, mul.y, mul.label, conj.label, xyx.label):
        a, b = even[x], even[y]
        assert l_mul == index[compose(a, b)]
        assert l_conj == index[compose(compose(a, b), inverse(a))]
        assert l_xyx == index[compose(compose(a, b), a)]


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

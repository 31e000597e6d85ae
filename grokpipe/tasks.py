"""The ten algorithmic tasks of Appendix A, their token layout and their deterministic splits.

Every example is the sequence ``<x><op><y><=>`` and the label is the answer token. Elements
are tokens ``0..n-1``; ``<op>`` is token ``n`` and ``<=>`` is token ``n+1``, so the vocabulary
has ``n + 2`` tokens (115 for p = 113, as in the paper).

The paper's three permutation tasks live in S5 (120 elements, 14,400 examples). The same three
in S4 (24 elements, 576 examples) are this project's addition: the quick scale's stand-in for
S5, which costs more than the whole quick pipeline to pretrain on a CPU (docs/quick-scale.md).
The same three in A5, S5's even permutations (60 elements, 3,600 examples, as many as the quick
scale's p = 59 tasks), sit between the two: whether a task fails at the quick scale for want of
examples or of model (docs/quick-scale.md).

Splits: one permutation of all examples per (task, p, data seed); a training set of size D is
its first D entries, so every smaller training set is a subset of every larger one, and the
test set is everything else.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cache
from typing import Callable

import numpy as np

from .errors import GrokpipeError

N_POSITIONS = 4  # <x> <op> <y> <=>
# p^2 examples: at p = 500 one model's evaluation logits (p^2 x (p + 2) float32) are 0.5 GB
MAX_P = 500


def is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin (exact for every n < 3.3e24): fast for any n a user can type."""
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    if n in small:
        return True
    if any(n % q == 0 for q in small):
        return False
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


@dataclass(frozen=True)
class TaskSpec:
    name: str
    formula: str
    group: str  # "mod" (elements 0..p-1), "sym" (the permutations of ``degree`` items) or "alt" (the even ones)
    answer: Callable[[np.ndarray, np.ndarray, int], np.ndarray] | None  # for "mod" tasks
    y_nonzero: bool = False  # division needs y != 0
    needs_prime: bool = False
    degree: int = 0  # permutation tasks: S_degree or A_degree


def _mod_inverse(y: np.ndarray, p: int) -> np.ndarray:
    return np.array([pow(int(v), p - 2, p) for v in y.ravel()], dtype=np.int64).reshape(y.shape)


def _div_odd_sub(x, y, p):
    odd = y % 2 == 1
    out = (x - y) % p
    out[odd] = (x[odd] * _mod_inverse(y[odd], p)) % p
    return out


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec("add", "x+y mod p", "mod", lambda x, y, p: (x + y) % p),
        TaskSpec("sub", "x-y mod p", "mod", lambda x, y, p: (x - y) % p),
        TaskSpec("mul", "x*y mod p", "mod", lambda x, y, p: (x * y) % p, needs_prime=True),
        TaskSpec(
            "div", "x/y mod p", "mod", lambda x, y, p: (x * _mod_inverse(y, p)) % p,
            y_nonzero=True, needs_prime=True,
        ),
        TaskSpec("div_odd_sub", "x/y if y odd else x-y mod p", "mod", _div_odd_sub, needs_prime=True),
        TaskSpec("sum_squares", "x^2+y^2 mod p", "mod", lambda x, y, p: (x * x + y * y) % p),
        TaskSpec("sum_squares_cross", "x^2+xy+y^2 mod p", "mod",
                 lambda x, y, p: (x * x + x * y + y * y) % p),
        *(TaskSpec(f"{group[0]}{k}_{name}", f"{formula} in {group[0].upper()}{k}", group, None, degree=k)
          for group, k in (("sym", 5), ("sym", 4), ("alt", 5))
          for name, formula in (("conj", "x y x^-1"), ("mul", "x y"), ("xyx", "x y x")))
    ]
}


def task_help() -> str:
    """One line per task, for ``--help`` texts."""
    return "; ".join(f"{t.name} ({t.formula})" for t in TASKS.values())


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise GrokpipeError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}") from None


def _is_even(perm: tuple[int, ...]) -> bool:
    return sum(a > b for a, b in itertools.combinations(perm, 2)) % 2 == 0


@cache
def _permutation_group(degree: int, even_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """Composition and inverse tables of S_degree, or of A_degree with ``even_only`` (element i is
    the group's i-th permutation in lexicographic order)."""
    perms = [p for p in itertools.permutations(range(degree)) if not even_only or _is_even(p)]
    index = {p: i for i, p in enumerate(perms)}
    compose = np.empty((len(perms), len(perms)), dtype=np.int64)  # compose[a, b] = a∘b, (a∘b)(k) = a(b(k))
    for i, a in enumerate(perms):
        for j, b in enumerate(perms):
            compose[i, j] = index[tuple(a[b[k]] for k in range(degree))]
    inverse = np.array([index[tuple(np.argsort(p))] for p in perms], dtype=np.int64)
    return compose, inverse


def n_elements(task: str, p: int) -> int:
    """Number of element tokens n (answers are 0..n-1; the vocabulary has n + 2 tokens)."""
    spec = get_task(task)
    if spec.group == "mod":
        return p
    return math.factorial(spec.degree) // (2 if spec.group == "alt" else 1)


def validate_task(task: str, p: int) -> None:
    spec = get_task(task)
    if isinstance(p, bool) or not isinstance(p, int):
        raise GrokpipeError(f"p must be an integer, got {p!r}")
    if spec.group == "mod":
        if not 3 <= p <= MAX_P:
            raise GrokpipeError(f"p must be in [3, {MAX_P}], got {p}")
        if spec.needs_prime and not is_prime(p):
            raise GrokpipeError(f"task {task} needs a prime p (division or multiplicative group), got p={p}")


@dataclass(frozen=True)
class Dataset:
    """All examples of a task: inputs ``x``, ``y`` and ``label``, each of shape (n_examples,)."""

    task: str
    p: int
    n: int
    x: np.ndarray
    y: np.ndarray
    label: np.ndarray

    @property
    def n_examples(self) -> int:
        return len(self.label)

    @property
    def vocab(self) -> int:
        return self.n + 2

    @property
    def op_token(self) -> int:
        return self.n

    @property
    def eq_token(self) -> int:
        return self.n + 1


@cache
def make_dataset(task: str, p: int) -> Dataset:
    """Every (x, y) pair of the task in row-major order, with its answer."""
    validate_task(task, p)
    spec = get_task(task)
    n = n_elements(task, p)
    x, y = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    if spec.y_nonzero:
        keep = y != 0
        x, y = x[keep], y[keep]
    if spec.group == "mod":
        label = spec.answer(x, y, p)
    else:
        compose, inverse = _permutation_group(spec.degree, even_only=spec.group == "alt")
        xy = compose[x, y]
        label = {"mul": xy, "conj": compose[xy, inverse[x]], "xyx": compose[xy, x]}[task.split("_", 1)[1]]
    for arr in (x, y, label):
        arr.setflags(write=False)
    return Dataset(task, p, n, x.astype(np.int64), y.astype(np.int64), label.astype(np.int64))


def split_order(task: str, p: int, data_seed: int) -> np.ndarray:
    """The fixed permutation of all examples for (task, p, data_seed); training sets are its prefixes."""
    n = make_dataset(task, p).n_examples
    return np.random.default_rng([data_seed, 7919, p]).permutation(n)


def check_n_train(task: str, p: int, n_train: int) -> None:
    total = make_dataset(task, p).n_examples
    if not 1 <= n_train <= total:
        raise GrokpipeError(
            f"n_train={n_train} is impossible for task {task} with p={p}: it has {total} examples"
        )


def train_indices(task: str, p: int, data_seed: int, n_train: int) -> np.ndarray:
    """Indices (into :func:`make_dataset`) of the training set of size ``n_train``."""
    check_n_train(task, p, n_train)
    return split_order(task, p, data_seed)[:n_train]


def random_labels(task: str, p: int, data_seed: int) -> np.ndarray:
    """A fixed random labelling of every example (memorisation-only runs); drawn once per seed."""
    ds = make_dataset(task, p)
    return np.random.default_rng([data_seed, 104729, p]).integers(0, ds.n, ds.n_examples)

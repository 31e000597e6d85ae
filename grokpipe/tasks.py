"""The ten algorithmic tasks of Appendix A, their token layout and their deterministic splits.

Every example is the sequence ``<x><op><y><=>`` and the label is the answer token. Elements
are tokens ``0..n-1``; ``<op>`` is token ``n`` and ``<=>`` is token ``n+1``, so the vocabulary
has ``n + 2`` tokens (115 for p = 113, as in the paper).

Splits: one permutation of all examples per (task, p, data seed); a training set of size D is
its first D entries, so every smaller training set is a subset of every larger one, and the
test set is everything else.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache
from typing import Callable

import numpy as np

from .errors import GrokpipeError

N_POSITIONS = 4  # <x> <op> <y> <=>


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


@dataclass(frozen=True)
class TaskSpec:
    name: str
    formula: str
    group: str  # "mod" (elements 0..p-1) or "s5" (the 120 permutations of 5 items)
    answer: Callable[[np.ndarray, np.ndarray, int], np.ndarray] | None  # for "mod" tasks
    y_nonzero: bool = False  # division needs y != 0
    needs_prime: bool = False


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
        TaskSpec("s5_conj", "x y x^-1 in S5", "s5", None),
        TaskSpec("s5_mul", "x y in S5", "s5", None),
        TaskSpec("s5_xyx", "x y x in S5", "s5", None),
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


@cache
def _s5_tables() -> tuple[np.ndarray, np.ndarray]:
    """Composition and inverse tables of S5 (element i is the i-th permutation in lexicographic order)."""
    perms = list(itertools.permutations(range(5)))
    index = {p: i for i, p in enumerate(perms)}
    compose = np.empty((120, 120), dtype=np.int64)  # compose[a, b] = a∘b, (a∘b)(k) = a(b(k))
    for i, a in enumerate(perms):
        for j, b in enumerate(perms):
            compose[i, j] = index[tuple(a[b[k]] for k in range(5))]
    inverse = np.array([index[tuple(np.argsort(p))] for p in perms], dtype=np.int64)
    return compose, inverse


def n_elements(task: str, p: int) -> int:
    """Number of element tokens n (answers are 0..n-1; the vocabulary has n + 2 tokens)."""
    return 120 if get_task(task).group == "s5" else p


def validate_task(task: str, p: int) -> None:
    spec = get_task(task)
    if spec.group == "mod":
        if p < 3:
            raise GrokpipeError(f"p must be at least 3, got {p}")
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
        compose, inverse = _s5_tables()
        xy = compose[x, y]
        label = {"s5_mul": xy, "s5_conj": compose[xy, inverse[x]], "s5_xyx": compose[xy, x]}[task]
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

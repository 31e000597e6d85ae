"""Typed specifications of what a training job trains: runs and shards, their defaults and their checks.

A *run* is one model trained on one training set with one weight decay, learning rate and seed.
A *shard* is a batch of runs with the same task and model shape, trained together as one ensemble
in one process. Each default lives here once (the CLI and the config schema's documentation derive
from these dataclasses), and :meth:`ShardSpec.validate` is the one check of every value, whether it
came from the command line, the config or a spec file.

Identity is a hash of everything that changes the numbers, including :data:`NUMERICS_VERSION`,
except the step count (raising ``steps`` resumes a shard instead of starting it over).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache

from .errors import GrokpipeError
from .tasks import check_n_train, n_elements, validate_task

# Raise by hand whenever a change alters the numbers training produces (the model's arithmetic,
# the optimiser, the loss, denormal handling, initialisation, splits). It is part of every shard's
# identity, so Snakemake re-trains exactly the training shards, and a checkpoint of another version
# is never resumed. tests/test_numerics.py holds a tiny run's numbers and says when to raise it.
#   1: the trainer up to 2026-11-26
#   2: denormals flushed to zero on the CPU
#   3: torch's fused AdamW kernel; the tables and attention with a written-out backward (rounding)
#   4: MKL's reproducible mode on the CPU (grokpipe.MKL_BRANCH): its products round by a fixed recipe
NUMERICS_VERSION = 4

MAX_STEPS = 10**10  # the evaluation schedule's log-spaced steps reach this far
MAX_SEED = 2**32 - 1
MAX_WIDTH = 8192  # any of d_model, d_head, d_mlp, n_heads
MAX_EVALS_PER_DECADE = 1000


# How the table mix's backward reaches the token rows: "sparse" uses CSR kernels (SDDMM and a
# transposed CSR product), "gather" gathers the rows each example mixes and scatter-adds into them
# (plain dense indexing, for devices whose sparse kernels are slow or missing). Both are checked
# against the reference (tests/test_model.py). Sparse is the default on every device: fastest on the
# CPU, and on an H100 a 64-run paper-scale shard trained 1.8x faster with it, in 40% of the memory
# (docs/speed.md, "GPU"). Here, beside the model's widths, so the CLI offers them without torch.
BACKENDS = ("sparse", "gather")
DEFAULT_BACKEND = BACKENDS[0]


@dataclass(frozen=True)
class ModelConfig:
    """Appendix A's transformer; the defaults are the paper's widths."""

    n: int  # number of element tokens; vocabulary n + 2 (<op>, <=>)
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512

    @property
    def vocab(self) -> int:
        return self.n + 2

    def as_dict(self) -> dict:
        return asdict(self)


def stable_hash(obj, length: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class RunSpec:
    n_train: int  # D: training set size (a prefix of the task's fixed permutation)
    weight_decay: float
    seed: int  # draws the initialisation and the split
    lr: float = 1e-3
    random_labels: bool = False

    def __post_init__(self):
        # -0.0 == 0.0 as a value, so it must be the same run (and hash the same)
        object.__setattr__(self, "weight_decay", float(self.weight_decay) + 0.0)
        object.__setattr__(self, "lr", float(self.lr) + 0.0)

    @property
    def run_id(self) -> str:
        return stable_hash(asdict(self), 10)

    def key(self) -> tuple:
        """What makes two runs the same run."""
        return (self.n_train, self.weight_decay, self.seed, self.lr, self.random_labels)


@dataclass(frozen=True)
class EvalSchedule:
    """Evaluate at step 0, every ``every`` steps, and ``per_decade`` log-spaced steps per decade.

    A pure function of the step, never of the total, so raising ``steps`` keeps the old points."""

    every: int = 100
    per_decade: int = 20

    def is_eval_step(self, step: int) -> bool:
        return step == 0 or (self.every > 0 and step % self.every == 0) or step in _log_steps(self.per_decade)

    def count(self, steps: int) -> int:
        """How many evaluations a run of ``steps`` makes (its last step included)."""
        regular = steps // self.every + 1 if self.every > 0 else 1
        logs = {s for s in _log_steps(self.per_decade) if s <= steps and not (self.every and s % self.every == 0)}
        return regular + len(logs) + (0 if self.is_eval_step(steps) else 1)


@lru_cache(maxsize=8)
def _log_steps(per_decade: int) -> frozenset[int]:
    """round(10 ** (k / per_decade)) for k = 0, 1, ... up to MAX_STEPS."""
    decades = round(math.log10(MAX_STEPS))
    return frozenset(round(10 ** (k / per_decade)) for k in range(decades * per_decade + 1)) if per_decade else frozenset()


def _integer(value, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GrokpipeError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise GrokpipeError(f"{name} must be in [{low}, {high}], got {value}")


def _finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GrokpipeError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ShardSpec:
    task: str
    p: int
    model: ModelConfig
    runs: tuple[RunSpec, ...]
    steps: int
    betas: tuple[float, float] = (0.9, 0.98)
    schedule: EvalSchedule = field(default_factory=EvalSchedule)
    checkpoint_every: int = 1000
    circuits: bool = False  # log Appendix B's C_gen / C_mem logits at every evaluation
    init_identity: str = ""  # identity and step of the checkpoint the runs start from, if any
    # each run stops once it has converged with a margin (grokpipe.convergence.STOP_CRITERION), the
    # shard when all have; like ``steps`` it decides where training ends, not its
    # numbers (the runs still training compute exactly what they would have:
    # grokpipe.train.ShardData.passes_for), so it is not part of the identity
    stop_when_converged: bool = False
    # a run's convergence also needs its correct logit (the ``train_logit`` curve) settled: the runs
    # that measure circuit efficiency (a logit and the norm it costs) are judged by what they measure.
    # Part of the identity, unlike stop_when_converged: turned on for a finished shard, the runs it had
    # stopped would have to train on, and a shard cannot restart a run it stopped
    settle_logit: bool = False

    def validate(self) -> "ShardSpec":
        """Check every value; raise a one-line GrokpipeError naming the first bad one."""
        validate_task(self.task, self.p)
        if not self.runs:
            raise GrokpipeError("a shard needs at least one run (empty grid)")
        keys = [r.key() for r in self.runs]
        if len(set(keys)) != len(keys):
            raise GrokpipeError("duplicate runs in the shard (the same n_train, weight decay, seed, lr twice)")
        for r in self.runs:
            _integer(r.n_train, "n_train", 1, 10**9)
            check_n_train(self.task, self.p, r.n_train)
            weight_decay, lr = _finite(r.weight_decay, "weight decay"), _finite(r.lr, "learning rate")
            if weight_decay < 0:
                raise GrokpipeError(f"weight decay must be >= 0, got {weight_decay}")
            if not lr > 0:
                raise GrokpipeError(f"learning rate must be > 0, got {lr}")
            if lr * weight_decay >= 1:
                raise GrokpipeError(f"learning rate x weight decay must be < 1 (AdamW multiplies parameters by "
                                    f"1 - lr wd each step), got {lr} x {weight_decay}")
            _integer(r.seed, "seed", 0, MAX_SEED)
            if not isinstance(r.random_labels, bool):
                raise GrokpipeError(f"random_labels must be true or false, got {r.random_labels!r}")
        _integer(self.steps, "steps", 0, MAX_STEPS)
        if self.model.n != n_elements(self.task, self.p):
            raise GrokpipeError("model vocabulary does not match the task")
        for name in ("d_model", "n_heads", "d_head", "d_mlp"):
            _integer(getattr(self.model, name), name, 1, MAX_WIDTH)
        _integer(self.checkpoint_every, "checkpoint_every", 1, MAX_STEPS)
        _integer(self.schedule.every, "eval every", 0, MAX_STEPS)
        _integer(self.schedule.per_decade, "evaluations per decade", 0, MAX_EVALS_PER_DECADE)
        if len(self.betas) != 2 or not all(0 <= _finite(b, "Adam beta") < 1 for b in self.betas):
            raise GrokpipeError(f"Adam betas must be two numbers in [0, 1), got {self.betas}")
        return self

    def identity_dict(self) -> dict:
        d = asdict(self)
        for where_it_ends in ("steps", "checkpoint_every", "stop_when_converged"):
            d.pop(where_it_ends)
        if not self.settle_logit:
            d.pop("settle_logit")  # the identities of shards without it stay what they were before it existed
        d["numerics"] = NUMERICS_VERSION
        return d

    @property
    def identity(self) -> str:
        return stable_hash(self.identity_dict(), 16)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str, where: str = "spec") -> "ShardSpec":
        """Parse and validate a spec written by :meth:`to_json`; a bad one is a one-line error."""
        try:
            d = json.loads(text)
            spec = ShardSpec(
                task=d["task"], p=d["p"], model=ModelConfig(**d["model"]),
                runs=tuple(RunSpec(**r) for r in d["runs"]), steps=d["steps"],
                betas=tuple(d["betas"]), schedule=EvalSchedule(**d["schedule"]),
                checkpoint_every=d["checkpoint_every"], circuits=d["circuits"], init_identity=d["init_identity"],
                stop_when_converged=d.get("stop_when_converged", False), settle_logit=d.get("settle_logit", False),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise GrokpipeError(f"{where} is not a grokpipe shard spec ({type(e).__name__}: {str(e)[:80]})") from None
        if not (isinstance(spec.init_identity, str) and isinstance(spec.circuits, bool)
                and isinstance(spec.stop_when_converged, bool) and isinstance(spec.settle_logit, bool)):
            raise GrokpipeError(f"{where} is not a grokpipe shard spec (a flag or init_identity of the wrong type)")
        return spec.validate()


def default(cls, name: str):
    """The default of a dataclass field: the CLI's defaults come from here, never a second copy."""
    return next(f.default for f in fields(cls) if f.name == name)

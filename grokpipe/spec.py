"""Typed specifications of what a training job trains: runs and shards.

A *run* is one model trained on one training set with one weight decay and seed. A *shard* is
a batch of runs with the same task and model shape, trained together as one ensemble in one
process. Identity is a hash of everything that changes the numbers, except the step count, so
that raising ``steps`` resumes a shard instead of starting it over.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from .errors import GrokpipeError
from .tasks import check_n_train, n_elements, validate_task


@dataclass(frozen=True)
class ModelConfig:
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

    @property
    def run_id(self) -> str:
        return stable_hash(asdict(self), 10)


@dataclass(frozen=True)
class EvalSchedule:
    """Evaluate at step 0, every ``every`` steps, and ``per_decade`` log-spaced steps per decade.

    A pure function of the step, never of the total, so raising ``steps`` keeps the old points."""

    every: int = 100
    per_decade: int = 20

    def is_eval_step(self, step: int) -> bool:
        return step == 0 or (self.every > 0 and step % self.every == 0) or step in _log_steps(self.per_decade)


@lru_cache(maxsize=8)
def _log_steps(per_decade: int) -> frozenset[int]:
    """round(10 ** (k / per_decade)) for k = 0, 1, ... up to 10^10 steps."""
    return frozenset(round(10 ** (k / per_decade)) for k in range(10 * per_decade + 1)) if per_decade else frozenset()


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

    def validate(self) -> "ShardSpec":
        validate_task(self.task, self.p)
        if not self.runs:
            raise GrokpipeError("a shard needs at least one run (empty grid)")
        ids = [r.run_id for r in self.runs]
        if len(set(ids)) != len(ids):
            raise GrokpipeError("duplicate runs in the shard (the same n_train, weight decay, seed, lr twice)")
        for r in self.runs:
            check_n_train(self.task, self.p, r.n_train)
            if r.weight_decay < 0:
                raise GrokpipeError(f"weight decay must be >= 0, got {r.weight_decay}")
            if not r.lr > 0:
                raise GrokpipeError(f"learning rate must be > 0, got {r.lr}")
        if self.steps < 0:
            raise GrokpipeError(f"steps must be >= 0, got {self.steps}")
        if self.model.n != n_elements(self.task, self.p):
            raise GrokpipeError("model vocabulary does not match the task")
        for name in ("d_model", "n_heads", "d_head", "d_mlp"):
            if getattr(self.model, name) <= 0:
                raise GrokpipeError(f"{name} must be positive, got {getattr(self.model, name)}")
        if self.checkpoint_every <= 0:
            raise GrokpipeError(f"checkpoint_every must be positive, got {self.checkpoint_every}")
        return self

    def identity_dict(self) -> dict:
        d = asdict(self)
        d.pop("steps")
        d.pop("checkpoint_every")
        return d

    @property
    def identity(self) -> str:
        return stable_hash(self.identity_dict(), 16)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "ShardSpec":
        d = json.loads(text)
        return ShardSpec(
            task=d["task"], p=d["p"], model=ModelConfig(**d["model"]),
            runs=tuple(RunSpec(**r) for r in d["runs"]), steps=d["steps"],
            betas=tuple(d["betas"]), schedule=EvalSchedule(**d["schedule"]),
            checkpoint_every=d["checkpoint_every"], circuits=d["circuits"], init_identity=d["init_identity"],
        )

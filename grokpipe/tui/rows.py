"""Table rows from scanned shard files, and the filter language typed into the filter box.

A filter is space-separated conditions, all of which must hold: ``wd=1 D<2000 exp=ungrok``.
Keys: exp, task, D, wd, seed, lr, init, state, step, train_acc, test_acc, train_loss, test_loss,
norm, gen, mem. Operators: = != < <= > >=. A bare word matches experiment, task or shard names.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

from ..monitor import ShardStatus
from ..store import Run

ALIASES = {
    "exp": "experiment", "experiment": "experiment", "task": "task", "d": "n_train", "n_train": "n_train",
    "wd": "weight_decay", "weight_decay": "weight_decay", "seed": "seed", "lr": "lr", "init": "init",
    "state": "state", "step": "step", "train_acc": "train_acc", "test_acc": "test_acc",
    "train_loss": "train_loss", "test_loss": "test_loss", "norm": "param_norm", "param_norm": "param_norm",
    "gen": "gen_logit", "mem": "mem_logit_train",
}
OPERATORS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
             ">=": operator.ge}
FILTER_KEYS = ("exp", "task", "D", "wd", "seed", "lr", "init", "state", "step", "train_acc", "test_acc",
               "train_loss", "test_loss", "norm", "gen", "mem")
CONDITION = re.compile(r"^([A-Za-z_]+)(<=|>=|!=|=|<|>)(.+)$")

# (key, header, width-ish format) in table order
COLUMNS = (
    ("experiment", "experiment", "{}"), ("task", "task", "{}"), ("n_train", "D", "{}"), ("weight_decay", "wd", "{:g}"),
    ("seed", "seed", "{}"), ("init", "init", "{}"), ("state", "state", "{}"), ("progress", "step", "{}"),
    ("rate", "steps/s", "{:.1f}"), ("eta", "ETA", "{}"), ("train_acc", "train acc", "{:.3f}"),
    ("test_acc", "test acc", "{:.3f}"), ("train_loss", "train loss", "{:.2e}"), ("test_loss", "test loss", "{:.2e}"),
    ("param_norm", "norm", "{:.1f}"), ("gen_logit", "C_gen", "{:.1f}"), ("mem_logit_train", "C_mem", "{:.1f}"),
)


class FilterError(ValueError):
    pass


TEXT_KEYS = {"experiment", "task", "init", "state"}


@dataclass(frozen=True)
class Condition:
    key: str | None  # None: a bare word
    op: str
    value: str | float  # a float for numeric keys, checked when parsed

    def holds(self, row: dict) -> bool:
        if self.key is None:
            word = str(self.value).lower()
            return any(word in str(row.get(k, "")).lower() for k in ("experiment", "task", "shard"))
        have = row.get(self.key)
        if self.key in TEXT_KEYS:
            return OPERATORS[self.op](str(have), self.value)
        if have is None or math.isnan(have):
            return False
        if self.op in ("=", "!="):
            return OPERATORS[self.op](math.isclose(have, self.value, rel_tol=1e-9, abs_tol=1e-12), True)
        return OPERATORS[self.op](have, self.value)


def parse_filter(text: str) -> list[Condition]:
    conditions = []
    for token in text.split():
        m = CONDITION.match(token)
        if not m:
            if any(ch in token for ch in "<>=!"):
                raise FilterError(f"cannot read {token!r}: write key=value, key<value, ...")
            conditions.append(Condition(None, "=", token))
            continue
        key, op, value = m.groups()
        if key.lower() not in ALIASES:
            raise FilterError(f"unknown key {key!r}; keys: {' '.join(FILTER_KEYS)}")
        key = ALIASES[key.lower()]
        if key not in TEXT_KEYS:
            try:
                value = float(value)
            except ValueError:
                raise FilterError(f"{key} needs a number, got {value!r}") from None
        conditions.append(Condition(key, op, value))
    return conditions


def _fmt_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def run_key(shard: ShardStatus, run: Run | None) -> str:
    return f"{shard.experiment}/{shard.name}/{run.run_id if run is not None else '-'}"


def row_values(shard: ShardStatus, run: Run | None) -> dict:
    """Every value a row shows or a filter tests, for one run of one shard (``None``: the shard's one
    row when its file cannot be read)."""
    p = run.hparams if run is not None else {}
    # a run with fewer evaluations than its shard stopped before it (it had converged): its own step
    stopped = run is not None and shard.read is not None and len(run.eval_step) < shard.read.rows
    live = shard.state in ("running", "stalled") and not stopped
    step = int(run.eval_step[-1]) if stopped else shard.step
    values = {
        "experiment": shard.experiment, "shard": shard.name, "task": p.get("task", ""),
        "n_train": int(p.get("n_train", 0)), "weight_decay": float(p.get("weight_decay", float("nan"))),
        "seed": int(p.get("seed", 0)), "lr": float(p.get("lr", float("nan"))), "init": p.get("init", ""),
        "state": "stopped" if stopped else shard.state, "step": step,
        "progress": f"{step}/{shard.steps_total}",
        "rate": shard.steps_per_second if live else float("nan"),
        "eta": _fmt_eta(shard.eta_seconds) if live else "",
    }
    for metric in ("train_acc", "test_acc", "train_loss", "test_loss", "param_norm", "gen_logit", "mem_logit_train"):
        values[metric] = run.final(metric) if run is not None else float("nan")
    return values


def format_cell(key: str, value) -> str:
    fmt = next(f for k, _, f in COLUMNS if k == key)
    if isinstance(value, float) and math.isnan(value):
        return ""
    return fmt.format(value)


def sort_value(value):
    """Sort numbers numerically with NaN last, text as text."""
    if isinstance(value, float) and math.isnan(value):
        return (1, 0.0)
    return (0, value)

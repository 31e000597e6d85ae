"""Training one shard: full-batch AdamW on an ensemble, evaluations into the live store, atomic
checkpoints, and resume that gives the same numbers as an uninterrupted run.

With full-batch training one step is one epoch. Training draws no random numbers after
initialisation (no dropout, no minibatches), so parameters, optimiser moments and the step count
are the whole state (:class:`TrainState`); the checkpoint also carries the curves so far, from
which the shard file is rebuilt on resume (a file torn by a kill is never appended to).

Imports only torch, numpy, h5py and rich (no Snakemake, Textual or jsonschema): a GPU machine
with just those can train (tests/test_imports.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .circuits import CIRCUIT_METRICS, circuit_metrics
from .convergence import STOP_CRITERION, run_converged
from .errors import GrokpipeError
from .files import check_distinct, check_output
from .model import Batch, forward, init_params, loss, param_norm, stack_params
from .optim import EnsembleAdamW
from .provenance import collect as collect_provenance
from .spec import DEFAULT_BACKEND, NUMERICS_VERSION, ShardSpec
from .store import BASE_METRICS, ShardWriter, evaluated_rows, read_shard
from .tasks import make_dataset, random_labels, train_indices

EVAL_CHUNK = 4096
# On a CPU, an ensemble's activations beyond a few thousand examples fall out of cache and a batched
# step gets slower than the same members one after another; on a GPU, one pass is fastest.
CPU_EXAMPLES_PER_PASS = 4096


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def configure_cpu(threads: int) -> bool:
    """Use ``threads`` torch threads, flush denormals, and keep freed memory in the process.
    Returns whether denormals are flushed (provenance records it).

    Denormals: once a run fits its training set, float32 gradients and Adam moments sink below
    1.2e-38, where x86 cores compute in microcode: steps ran 3-4x slower in the fitted regime.
    Flush-to-zero and denormals-are-zero make those values 0 instead (docs/speed.md).

    Memory: a step allocates and frees the same few ~10 MB buffers. By default glibc returns them
    to the kernel and takes fresh zeroed pages on the next step: about 3000 page faults a step,
    4 ms of a 22 ms step at D = 3830 on this project's CPU machine."""
    torch.set_num_threads(threads)
    flushed = torch.set_flush_denormal(True)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:  # not glibc: leave the allocator alone
            return flushed
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # largest glibc accepts: smaller blocks come from the heap
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)  # and the heap is not trimmed after every step
    return flushed


# cuBLAS's fixed workspace, which torch's deterministic algorithms need on CUDA; read when the
# process first calls cuBLAS, so it is set before training touches the device
CUBLAS_DETERMINISTIC_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def deterministic_algorithms(on: bool):
    """torch's deterministic algorithms while training (a process-wide switch, restored after).

    On CUDA the scatter-adds are otherwise atomic and sum in a different order each run: two runs
    of one shard differed by 1e-9 at step 20 and 1e-3 by step 200 on an H100. With the switch both
    backends gave the same bits run to run there, about 17% slower (docs/speed.md, "GPU").
    On the CPU grokpipe's kernels are deterministic already: the switch changes no bits."""
    if not on:
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC_WORKSPACE)
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GrokpipeError("--device cuda asked for, but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise GrokpipeError(f"unknown device {name!r}; choose cpu, cuda or auto")
    return torch.device(name)


def init_from_checkpoint(spec: ShardSpec, path: Path) -> tuple[list[dict], dict, str]:
    """Each run continues the member of the checkpoint with the same seed (ungrokking: "continue
    training on a smaller subset"): its parameters, and its AdamW moments and step count.

    A fresh AdamW would not continue: Adam's first update is about ``lr * sign(gradient)`` for
    every parameter, which at the quick scale's lr 1e-2 knocked grokked models to 20-90% test
    accuracy in one step, before any ungrokking. Returns the parameters per run, the optimiser
    state for the shard, and the source's ``identity@step``."""
    state = load_checkpoint(path)
    source = ShardSpec.from_json(state["spec"], f"--init-from {path}")
    if (source.task, source.p, source.model) != (spec.task, spec.p, spec.model):
        raise GrokpipeError(f"--init-from {path} was trained on another task or model shape")
    picks = []
    for run in spec.runs:
        matches = [i for i, r in enumerate(source.runs) if r.seed == run.seed]
        if len(matches) != 1:
            raise GrokpipeError(f"--init-from {path} has {len(matches)} runs with seed {run.seed}; need exactly one")
        picks.append(matches[0])
    members = [{k: v[i].clone() for k, v in state["params"].items()} for i in picks]
    saved = state["optim"]
    optim = {"step_count": saved["step_count"],
             **{moment: {k: v[picks].clone() for k, v in saved[moment].items()} for moment in ("exp_avg", "exp_avg_sq")}}
    return members, optim, f"{state['identity']}@{state['step']}"


# ---------------------------------------------------------------- data


@dataclasses.dataclass
class Pass:
    """Members trained together in one forward and backward pass, with their (padded) training sets."""

    rows: slice | torch.Tensor | None  # the members' rows of the ensemble's parameters (None: all of them)
    batch: Batch
    labels: torch.Tensor  # (members, d_max) the labels each member trains on
    weight: torch.Tensor  # (members, d_max) float64: 1 / n_train, 0 on padding rows


def member_passes(n_train: list[int], device: torch.device, single_pass: bool | None = None) -> list[slice]:
    """Groups of consecutive members whose forward and backward run together.

    On a GPU (or with ``single_pass``), one pass over the whole ensemble. On a CPU, members are
    grouped up to about CPU_EXAMPLES_PER_PASS examples, each pass padded only to its own largest
    training set: an ensemble then costs what its members cost one after another."""
    if single_pass if single_pass is not None else device.type != "cpu":
        return [slice(0, len(n_train))]
    passes, start, largest = [], 0, 0
    for i, d in enumerate(n_train):
        largest = max(largest, d)
        if i > start and largest * (i + 1 - start) > CPU_EXAMPLES_PER_PASS:
            passes.append(slice(start, i))
            start, largest = i, d
    passes.append(slice(start, len(n_train)))
    return passes


class ShardData:
    """Tensors for one shard: every example, and the passes that train its members (each pass's
    members' training sets, padded to the pass's largest)."""

    def __init__(self, spec: ShardSpec, device: torch.device, single_pass: bool | None = None,
                 backend: str = DEFAULT_BACKEND):
        ds = make_dataset(spec.task, spec.p)
        self.dataset = ds
        M, n_ex = len(spec.runs), ds.n_examples
        self.x_all = torch.as_tensor(ds.x, device=device)
        self.y_all = torch.as_tensor(ds.y, device=device)
        self.true_labels = torch.as_tensor(ds.label, device=device)
        labels = torch.empty(M, n_ex, dtype=torch.long)  # the labels each member trains on, every example
        mask = torch.zeros(M, n_ex, dtype=torch.bool)
        self._chosen = []
        for i, run in enumerate(spec.runs):
            # in dataset order (x-major), so consecutive examples share x's table rows: ~5% faster
            self._chosen.append(torch.as_tensor(np.sort(train_indices(spec.task, spec.p, run.seed, run.n_train))))
            labels[i] = torch.as_tensor(random_labels(spec.task, spec.p, run.seed) if run.random_labels else ds.label)
            mask[i, self._chosen[i]] = True
        self.train_labels_all, self.train_mask = labels.to(device), mask.to(device)
        self._model, self._device, self._backend = spec.model, device, backend
        self.members = tuple(range(M))
        self._groups = [self.members[group] for group in member_passes([r.n_train for r in spec.runs], device, single_pass)]
        self.passes = [self._pass(list(group), max(len(self._chosen[i]) for i in group)) for group in self._groups]
        self._subset: tuple[tuple[int, ...], list[Pass]] = (self.members, self.passes)

    def passes_for(self, members: tuple[int, ...]) -> list[Pass]:
        """The passes that train ``members`` (the rest of the ensemble sits still); the last set
        asked for is kept, since it changes only when a run stops.

        Each is one of the whole ensemble's passes without the members left out, padded as before:
        a member's numbers then do not depend on which of its shard-mates still train (the
        padding's length changes the rounding of sums over examples)."""
        if members != self._subset[0]:
            self._subset = (members, [self._pass([i for i in group if i in members], max(len(self._chosen[i]) for i in group))
                                      for group in self._groups if any(i in members for i in group)])
        return self._subset[1]

    def _pass(self, ids: list[int], d_max: int) -> Pass:
        if ids == list(self.members):
            rows = None  # the parameters whole: a slice or an index would cost a copy in backward
        elif ids == list(range(ids[0], ids[-1] + 1)):
            rows = slice(ids[0], ids[-1] + 1)
        else:
            rows = torch.as_tensor(ids, device=self._device)
        idx = torch.zeros(len(ids), d_max, dtype=torch.long)
        weight = torch.zeros(len(ids), d_max, dtype=torch.float64)
        for row, i in enumerate(ids):
            idx[row, : len(self._chosen[i])] = self._chosen[i]
            weight[row, : len(self._chosen[i])] = 1.0 / len(self._chosen[i])  # padding rows weigh nothing
        idx = idx.to(self._device)
        batch = Batch(self._model, self.x_all[idx], self.y_all[idx], self._backend)
        labels = self.train_labels_all[rows if rows is not None else slice(None)].gather(1, idx)
        return Pass(rows, batch, labels, weight.to(self._device))


def train_step(params, opt: EnsembleAdamW, spec: ShardSpec, data: ShardData,
               members: tuple[int, ...] | None = None) -> None:
    """One full-batch AdamW step for ``members`` (every member by default; the others keep their
    parameters and moments). Gradients accumulate pass by pass.

    Members are independent, so the gradient of the sum of their losses is each member's own."""
    opt.zero_grad()
    for p in data.passes_for(data.members if members is None else members):
        members_params = params if p.rows is None else {k: v[p.rows] for k, v in params.items()}
        loss(members_params, spec.model, p.batch, p.labels, p.weight).backward()
    opt.step(members)


@torch.no_grad()
def evaluate(params, spec: ShardSpec, data: ShardData, members: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """Train/test loss and accuracy, parameter norm (and circuit logits) for ``members`` (every
    member by default); the others' values are NaN (runs that stopped)."""
    M = len(spec.runs)
    chosen = list(range(M) if members is None else members)
    labels_all, train_mask = data.train_labels_all, data.train_mask
    if len(chosen) < M:
        rows = torch.as_tensor(chosen, device=data.x_all.device)
        params = {k: v[rows] for k, v in params.items()}
        labels_all, train_mask = labels_all[rows], train_mask[rows]
    m = len(chosen)
    n_ex = data.dataset.n_examples
    logits = torch.empty(m, n_ex, spec.model.vocab, dtype=torch.float32, device=data.x_all.device)
    for start in range(0, n_ex, EVAL_CHUNK):
        sl = slice(start, start + EVAL_CHUNK)
        xs, ys = data.x_all[sl].expand(m, -1), data.y_all[sl].expand(m, -1)
        logits[:, sl] = forward(params, spec.model, Batch(spec.model, xs, ys))
    logits64 = logits.double()
    logp = logits64.log_softmax(-1)
    # train metrics use the labels the member trained on; test metrics the true labels
    nll_train = -logp.gather(2, labels_all.unsqueeze(-1)).squeeze(-1)
    nll_test = -logp.gather(2, data.true_labels.expand(m, -1).unsqueeze(-1)).squeeze(-1)
    # correct logit minus the mean logit (softmax ignores a shared offset): Fig 3's "correct logit"
    correct_train = logits64.gather(2, labels_all.unsqueeze(-1)).squeeze(-1) - logits64.mean(-1)
    pred = logits.argmax(-1)
    right_train = (pred == labels_all).double()
    right_test = (pred == data.true_labels).double()
    train, test = train_mask.double(), (~train_mask).double()

    def mean(values, mask):
        count = mask.sum(1)
        return torch.where(count > 0, (values * mask).sum(1) / count.clamp(min=1), torch.nan)

    values = {
        "train_loss": mean(nll_train, train), "test_loss": mean(nll_test, test),
        "train_acc": mean(right_train, train), "test_acc": mean(right_test, test),
        "param_norm": param_norm(params), "train_logit": mean(correct_train, train),
    }
    values = {k: v.cpu().numpy() for k, v in values.items()}
    if spec.circuits:
        values.update(circuit_metrics(spec.task, spec.p, logits.cpu().numpy(), data.dataset.label,
                                      train_mask.cpu().numpy()))
    out = {}
    for k, v in values.items():
        out[k] = np.full(M, np.nan)
        out[k][chosen] = v
    return out


def metric_names(spec: ShardSpec) -> list[str]:
    return list(BASE_METRICS) + (list(CIRCUIT_METRICS) if spec.circuits else [])


# ---------------------------------------------------------------- the state of training


def _evaluated_at(history: dict[str, list], step: int) -> bool:
    """Whether a history's last evaluation was made at ``step``."""
    return bool(history["eval_step"]) and history["eval_step"][-1] == step


class TrainState:
    """Parameters, optimiser, step, curves and wall time: everything a checkpoint holds."""

    def __init__(self, spec: ShardSpec, params: dict[str, torch.Tensor], optim_state: dict | None, step: int,
                 history: dict[str, list], wall: float):
        self.spec, self.step, self.history, self.wall = spec, step, history, wall
        self.metrics = metric_names(spec)
        self._clock = time.monotonic()
        self.params = params
        for p in params.values():
            p.requires_grad_(True)
        runs = spec.runs
        self.opt = EnsembleAdamW(params, [r.lr for r in runs], [r.weight_decay for r in runs], spec.betas)
        if optim_state is not None:
            self.opt.load_state_dict(optim_state)
        self._curves_at: tuple[int, list] = (-1, [])  # _run_curves' result and the evaluations it saw
        self.training = self._still_training(tuple(range(len(runs))))

    @classmethod
    def start(cls, spec: ShardSpec, device: torch.device, members: list[dict] | None = None,
              optim_state: dict | None = None) -> "TrainState":
        """A fresh start: each run's own initialisation, or the members and optimiser given (--init-from)."""
        members = members or [init_params(spec.model, r.seed) for r in spec.runs]
        params = {k: v.to(device) for k, v in stack_params(members).items()}
        history = {"eval_step": [], "eval_wall": [], **{m: [] for m in metric_names(spec)}}
        return cls(spec, params, optim_state, 0, history, 0.0)

    @classmethod
    def restore(cls, spec: ShardSpec, state: dict, device: torch.device) -> "TrainState":
        """The state a checkpoint holds, as ``spec`` (perhaps with another step cap) continues it.

        A checkpoint taken at its own cap ends with the evaluation made there; under a larger cap
        that step is no scheduled evaluation, so the row is dropped: raising the cap gives the curves
        a fresh run with that cap gives (tests/test_train.py)."""
        history = {k: list(v.numpy()) for k, v in state["history"].items()}
        history.setdefault("eval_wall", [math.nan] * len(history["eval_step"]))
        step = int(state["step"])
        if _evaluated_at(history, step) and step != spec.steps and not spec.schedule.is_eval_step(step):
            history = {k: v[:-1] for k, v in history.items()}
        params = {k: v.to(device) for k, v in state["params"].items()}
        return cls(spec, params, state["optim"], step, history, float(state["wall_seconds"]))

    def history_arrays(self) -> dict[str, np.ndarray]:
        M = len(self.spec.runs)
        return {"eval_step": np.array(self.history["eval_step"], dtype=np.int64),
                "eval_wall": np.array(self.history["eval_wall"], dtype=np.float64),
                **{m: np.array(self.history[m], dtype=np.float64).reshape(-1, M) for m in self.metrics}}

    def checkpoint(self) -> dict:
        """Everything to resume from; copies (the parameters are slices of the optimiser's buffer)."""
        return {"identity": self.spec.identity, "spec": self.spec.to_json(), "step": self.step,
                "numerics": NUMERICS_VERSION,
                "params": {k: v.detach().to("cpu", copy=True) for k, v in self.params.items()}, "optim": self.opt.state_dict(),
                "history": {k: torch.as_tensor(v) for k, v in self.history_arrays().items()},
                "wall_seconds": self.wall}

    def evaluated_at_this_step(self) -> bool:
        return _evaluated_at(self.history, self.step)

    def due_for_evaluation(self) -> bool:
        """At a scheduled step or the last one, unless this step's evaluation is already recorded
        (a resumed run restarts at a step it evaluated before it stopped)."""
        return not self.evaluated_at_this_step() and (self.spec.schedule.is_eval_step(self.step)
                                                      or self.step == self.spec.steps)

    def advance(self, data: ShardData) -> None:
        """One training step of the runs still training; the wall clock counts everything since the
        last step (evaluations too)."""
        train_step(self.params, self.opt, self.spec, data, self.training)
        self.step += 1
        now = time.monotonic()
        self.wall, self._clock = self.wall + now - self._clock, now

    def latest(self) -> dict[str, np.ndarray]:
        """The last evaluation's row (NaN for runs that had stopped before it)."""
        return {m: self.history[m][-1] for m in self.metrics}

    def final(self) -> dict[str, np.ndarray]:
        """Each run's values at its own last evaluation."""
        runs = [curves for _, curves in self._run_curves()]
        return {m: np.array([curves[m][-1] for curves in runs]) for m in self.metrics}

    def record_evaluation(self, data: ShardData) -> None:
        """Evaluate the runs still training and record it; with ``stop_when_converged``, a run stops
        once it passes the convergence criterion with a margin (grokpipe.convergence.STOP_CRITERION).
        Its later evaluations are NaN: the shard file's mark of a run that stopped, which readers trim."""
        values = evaluate(self.params, self.spec, data, self.training)
        self.history["eval_step"].append(self.step)
        self.history["eval_wall"].append(self.wall)
        for m in self.metrics:
            self.history[m].append(values[m])
        self.training = self._still_training(self.training)

    def _run_curves(self) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Each run's evaluation steps and curves, up to its own last evaluation: built once per
        evaluation (the stop test after it and the shard's end test both read them)."""
        evaluations = len(self.history["eval_step"])
        if self._curves_at[0] == evaluations:
            return self._curves_at[1]
        arrays = self.history_arrays()
        runs = []
        for i in range(len(self.spec.runs)):
            curves = {m: arrays[m][:, i] for m in self.metrics}
            end = evaluated_rows(curves, len(arrays["eval_step"]))
            runs.append((arrays["eval_step"][:end], {m: c[:end] for m, c in curves.items()}))
        self._curves_at = (evaluations, runs)
        return runs

    def _stops(self, member: int, run_curves: tuple[np.ndarray, dict]) -> bool:
        """Whether a run stops here: it passed the stopping criterion, on its own curves alone."""
        run = self.spec.runs[member]
        return self.spec.stop_when_converged and run_converged(*run_curves, run.lr * run.weight_decay, STOP_CRITERION,
                                                               self.spec.settle_logit)

    def _still_training(self, members: tuple[int, ...]) -> tuple[int, ...]:
        """``members`` less the runs that train no more: those not evaluated at the last evaluation
        (they stopped before), and, with ``stop_when_converged``, those past the stopping criterion
        there. The shard ends when none is left (or at its step cap): no rule reads another run's
        curves, so where a run ends does not depend on how the runs were cut into shards."""
        runs = self._run_curves()
        evaluations = len(self.history["eval_step"])
        return tuple(i for i in members if len(runs[i][0]) == evaluations and not self._stops(i, runs[i]))


# ---------------------------------------------------------------- progress


class Progress:
    """A rich progress bar in a terminal; a plain line every ``interval`` seconds otherwise."""

    def __init__(self, total: int, start: int, label: str, enabled: bool = True, interval: float = 30.0):
        self.total, self.label, self.interval = total, label, interval
        self.enabled = enabled
        self.bar = None
        self.last_print = time.monotonic()
        self.t0, self.step0 = time.monotonic(), start
        if enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.1f} steps/s"), TimeRemainingColumn(), transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task(label, total=total, completed=start, rate=0.0)

    def rate(self, step: int) -> float:
        elapsed = time.monotonic() - self.t0
        return (step - self.step0) / elapsed if elapsed > 0 else 0.0

    def update(self, step: int, note: str = "") -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(self.task, completed=step, rate=self.rate(step), description=f"{self.label} {note}")
        elif time.monotonic() - self.last_print >= self.interval or step == self.total:
            self.last_print = time.monotonic()
            rate = self.rate(step)
            eta = (self.total - step) / rate if rate > 0 else math.inf
            print(f"{self.label}: step {step}/{self.total} ({rate:.1f} steps/s, eta {eta:.0f} s) {note}",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _accuracy_note(history: dict) -> str:
    """Mean accuracies of the runs evaluated last (runs that stopped are NaN there)."""
    train, test = history["train_acc"][-1], history["test_acc"][-1]
    note = f"train acc {np.nanmean(train):.2f}"
    return note + (f" test acc {np.nanmean(test):.2f}" if np.isfinite(test).any() else "")


class _StopRequest:
    """SIGINT/SIGTERM set a flag; the loop checkpoints and stops at the end of the step."""

    def __init__(self):
        self.signal = None

    def __enter__(self):
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        self.signal = signum

    def __exit__(self, *exc):
        for s, h in self.previous.items():
            signal.signal(s, h)


# ---------------------------------------------------------------- the loop


def _check_out(out: Path, identity: str) -> None:
    """``--out`` is absent, or this shard's own file (never a user's file or another shard)."""
    check_output(out, "shard", "--out")
    if out.exists() and read_shard(out, with_curves=False).identity != identity:
        raise GrokpipeError(f"--out {out} holds a different shard; delete it or choose another path")


def _start(spec: ShardSpec, checkpoint: Path, init_from: Path | None, dev: torch.device) -> tuple[ShardSpec, TrainState]:
    """The spec as it trains (with the identity of what it starts from) and its state: resumed from
    the checkpoint when there is one, else a fresh start (from --init-from's runs, if given)."""
    members = optim_state = None
    if init_from is not None:
        members, optim_state, init_identity = init_from_checkpoint(spec, init_from)
        spec = dataclasses.replace(spec, init_identity=init_identity)
    spec.validate()
    if not checkpoint.exists():
        return spec, TrainState.start(spec, dev, members, optim_state)
    state = load_checkpoint(checkpoint)
    if state["identity"] != spec.identity:
        raise GrokpipeError(f"checkpoint {checkpoint} belongs to a different shard; delete it or choose another path")
    if state["step"] > spec.steps:
        raise GrokpipeError(f"checkpoint {checkpoint} is at step {state['step']}, beyond --steps {spec.steps}; "
                            f"raise --steps, or delete the checkpoint and its shard file to train anew")
    return spec, TrainState.restore(spec, state, dev)


def train_shard(spec: ShardSpec, out: Path, checkpoint: Path, init_from: Path | None = None,
                device: str = "cpu", threads: int | None = None, experiment: str = "",
                show_progress: bool = True, single_pass: bool | None = None, backend: str = DEFAULT_BACKEND,
                deterministic: bool = False) -> dict:
    """Train (or resume, or finish) a shard; returns the final metrics of every run.

    ``single_pass``: one pass over the whole ensemble (a GPU's default) instead of the CPU's passes
    of a few thousand examples; ``backend``: how the backward reaches the token tables
    (grokpipe.spec.BACKENDS). Neither changes the numbers beyond rounding. ``deterministic``: torch's
    deterministic algorithms (:func:`deterministic_algorithms`)."""
    with deterministic_algorithms(deterministic):
        return _train_shard(spec, Path(out), Path(checkpoint), init_from, device, threads, experiment, show_progress,
                            single_pass, backend, deterministic)


def _train_shard(spec: ShardSpec, out: Path, checkpoint: Path, init_from: Path | None, device: str,
                 threads: int | None, experiment: str, show_progress: bool, single_pass: bool | None, backend: str,
                 deterministic: bool) -> dict:
    check_distinct(**{"--out": out, "--checkpoint": checkpoint, "--init-from": init_from})
    threads = threads or available_cores()
    flushed = configure_cpu(threads)
    dev = pick_device(device)
    spec, state = _start(spec, checkpoint, Path(init_from) if init_from else None, dev)
    _check_out(out, spec.identity)
    data = ShardData(spec, dev, single_pass, backend)
    attrs = {"identity": spec.identity, "spec": spec.to_json(), "task": spec.task, "p": spec.p,
             "experiment": experiment, **collect_provenance(dev.type, threads, flushed, backend, deterministic)}
    run_attrs = [(r.run_id, {"task": spec.task, "p": spec.p, **dataclasses.asdict(r),
                             "init": "checkpoint" if spec.init_identity else "random", "settle_logit": spec.settle_logit,
                             **{f"model_{k}": v for k, v in spec.model.as_dict().items()}}) for r in spec.runs]
    writer = ShardWriter(out, attrs, run_attrs, state.metrics, state.history_arrays(), spec.steps)
    progress = Progress(spec.steps, state.step, experiment or out.stem, show_progress)
    try:
        with _StopRequest() as stop:
            while True:
                if state.due_for_evaluation():
                    state.record_evaluation(data)
                    writer.append(state.step, state.latest(), spec.steps, state.wall)
                    progress.update(state.step, _accuracy_note(state.history))
                if state.step >= spec.steps or not state.training:
                    break  # not training: also when resumed at the evaluation where it had ended
                state.advance(data)
                if state.step % spec.checkpoint_every == 0 or stop.signal is not None:
                    save_checkpoint(checkpoint, state.checkpoint())
                    writer.set_progress(state.step, spec.steps, state.wall, done=False)
                    progress.update(state.step)
                if stop.signal is not None:
                    raise GrokpipeError(f"stopped by signal {stop.signal} at step {state.step}; "
                                        "checkpoint saved, re-run to resume")
            save_checkpoint(checkpoint, state.checkpoint())
            writer.set_progress(state.step, spec.steps, state.wall, done=True)
    finally:
        progress.close()
        writer.close()
    return state.final()


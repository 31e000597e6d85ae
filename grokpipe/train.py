"""Training one shard: full-batch AdamW on an ensemble, evaluations into the live store,
atomic checkpoints, and resume that gives the same numbers as an uninterrupted run.

With full-batch training one step is one epoch. Training draws no random numbers after
initialisation (no dropout, no minibatches), so parameters, optimiser moments and the step count
are the whole state; the checkpoint also carries the curves so far, from which the shard file is
rebuilt on resume (a file torn by a kill is never appended to).
"""

from __future__ import annotations

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

from .circuits import CIRCUIT_METRICS, circuit_metrics
from .errors import GrokpipeError
from .model import Batch, forward, init_params, loss, param_norm, stack_params
from .optim import EnsembleAdamW
from .spec import ShardSpec
from .store import BASE_METRICS, SHARD_FORMAT, ShardWriter, StoreError, file_format, read_shard
from .tasks import make_dataset, random_labels, train_indices

CHECKPOINT_FORMAT = "grokpipe-checkpoint-1"
EVAL_CHUNK = 4096


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def configure_cpu(threads: int) -> None:
    """Use ``threads`` torch threads, and keep freed memory in the process.

    A training step allocates and frees the same few ~10 MB buffers every step. By default glibc
    returns such blocks to the kernel and takes fresh zeroed pages on the next step: about 3000
    page faults a step, 4 ms of a 22 ms step at D = 3830 on this project's CPU machine."""
    torch.set_num_threads(threads)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:  # not glibc: leave the allocator alone
            return
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # largest glibc accepts: smaller blocks come from the heap
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)  # and the heap is not trimmed after every step


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GrokpipeError("--device cuda asked for, but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise GrokpipeError(f"unknown device {name!r}; choose cpu, cuda or auto")
    return torch.device(name)


# ---------------------------------------------------------------- checkpoints


def save_checkpoint(path: Path, state: dict) -> None:
    """Write to a temporary name, then rename: a kill mid-write leaves the previous checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise GrokpipeError(f"cannot write checkpoint {path}: {e.strerror or e}") from None


def load_checkpoint(path: Path) -> dict:
    """Load safely (``weights_only=True``: no code runs) and check it is one of ours."""
    path = Path(path)
    if not path.is_file():
        raise GrokpipeError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for torn or foreign files
        first = str(e).strip().splitlines()[0][:80] if str(e).strip() else type(e).__name__
        raise GrokpipeError(f"checkpoint {path} is corrupt or not a grokpipe checkpoint ({first})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise GrokpipeError(f"checkpoint {path} is not a grokpipe checkpoint")
    return state


def init_from_checkpoint(spec: ShardSpec, path: Path) -> tuple[list[dict], dict, str]:
    """Each run continues the member of the checkpoint with the same seed (ungrokking: "continue
    training on a smaller subset"): its parameters, and its AdamW moments and step count.

    A fresh AdamW would not continue: Adam's first update is about ``lr * sign(gradient)`` for
    every parameter, which at the quick scale's lr 1e-2 knocked grokked models to 20-90% test
    accuracy in one step, before any ungrokking. Returns the parameters per run, the optimiser
    state for the shard, and the source's ``identity@step``."""
    state = load_checkpoint(path)
    source = ShardSpec.from_json(state["spec"])
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


class ShardData:
    """Tensors for one shard: every example, and each member's (padded) training set."""

    def __init__(self, spec: ShardSpec, device: torch.device):
        ds = make_dataset(spec.task, spec.p)
        self.dataset = ds
        M, n_ex = len(spec.runs), ds.n_examples
        d_max = max(r.n_train for r in spec.runs)
        self.x_all = torch.as_tensor(ds.x, device=device)
        self.y_all = torch.as_tensor(ds.y, device=device)
        self.true_labels = torch.as_tensor(ds.label, device=device)
        self.train_labels_all = torch.empty(M, n_ex, dtype=torch.long)  # labels the member trains on
        self.train_mask = torch.zeros(M, n_ex, dtype=torch.bool)
        idx = torch.zeros(M, d_max, dtype=torch.long)
        weight = torch.zeros(M, d_max, dtype=torch.float64)
        for i, run in enumerate(spec.runs):
            # in dataset order (x-major), so consecutive examples share x's table rows: ~5% faster
            chosen = torch.as_tensor(np.sort(train_indices(spec.task, spec.p, run.seed, run.n_train)))
            labels = random_labels(spec.task, spec.p, run.seed) if run.random_labels else ds.label
            self.train_labels_all[i] = torch.as_tensor(labels)
            self.train_mask[i, chosen] = True
            idx[i, : run.n_train] = chosen
            weight[i, : run.n_train] = 1.0 / run.n_train  # padding rows weigh nothing
        self.train_labels_all = self.train_labels_all.to(device)
        self.train_mask = self.train_mask.to(device)
        self.x = self.x_all[idx.to(device)]
        self.y = self.y_all[idx.to(device)]
        self.labels = self.train_labels_all.gather(1, idx.to(device))
        self.weight = weight.to(device)
        # members trained together, with their examples (a Batch is reused every step)
        self.chunks = [(members, Batch(spec.model, self.x[members], self.y[members]))
                       for members in member_chunks(M, d_max, device)]


def train_loss(params, spec: ShardSpec, data: ShardData, members: slice, batch: Batch) -> torch.Tensor:
    """Sum over ``members`` of each member's mean cross-entropy on ``batch``.

    Members are independent, so the gradient of the sum is each member's own gradient."""
    p = {k: v[members] for k, v in params.items()}
    return loss(p, spec.model, batch, data.labels[members], data.weight[members])


# On a CPU, an ensemble's activations beyond a few thousand examples fall out of cache and a batched
# step gets slower than the same members one after another; on a GPU, one pass is fastest.
CPU_EXAMPLES_PER_PASS = 4096


def member_chunks(n_members: int, n_examples: int, device: torch.device) -> list[slice]:
    """Groups of members whose forward and backward run together in one pass."""
    if device.type != "cpu":
        return [slice(None)]
    size = max(1, CPU_EXAMPLES_PER_PASS // max(n_examples, 1))
    return [slice(i, min(i + size, n_members)) for i in range(0, n_members, size)]


def train_step(params, opt: EnsembleAdamW, spec: ShardSpec, data: ShardData) -> None:
    """One full-batch AdamW step for every member (gradients accumulate chunk by chunk)."""
    opt.zero_grad()
    for members, batch in data.chunks:
        train_loss(params, spec, data, members, batch).backward()
    opt.step()


@torch.no_grad()
def evaluate(params, spec: ShardSpec, data: ShardData) -> dict[str, np.ndarray]:
    """Train/test loss and accuracy, parameter norm (and circuit logits) for every member."""
    M = len(spec.runs)
    n_ex = data.dataset.n_examples
    logits = torch.empty(M, n_ex, spec.model.vocab, dtype=torch.float32, device=data.x.device)
    for start in range(0, n_ex, EVAL_CHUNK):
        sl = slice(start, start + EVAL_CHUNK)
        xs, ys = data.x_all[sl].expand(M, -1), data.y_all[sl].expand(M, -1)
        logits[:, sl] = forward(params, spec.model, Batch(spec.model, xs, ys))
    logp = logits.double().log_softmax(-1)
    # train metrics use the labels the member trained on; test metrics the true labels
    nll_train = -logp.gather(2, data.train_labels_all.unsqueeze(-1)).squeeze(-1)
    nll_test = -logp.gather(2, data.true_labels.expand(M, -1).unsqueeze(-1)).squeeze(-1)
    # correct logit minus the mean logit (softmax ignores a shared offset): Fig 3's "correct logit"
    centred = logits.double() - logits.double().mean(-1, keepdim=True)
    correct_train = centred.gather(2, data.train_labels_all.unsqueeze(-1)).squeeze(-1)
    pred = logits.argmax(-1)
    right_train = (pred == data.train_labels_all).double()
    right_test = (pred == data.true_labels).double()
    train, test = data.train_mask.double(), (~data.train_mask).double()

    def mean(values, mask):
        count = mask.sum(1)
        return torch.where(count > 0, (values * mask).sum(1) / count.clamp(min=1), torch.nan)

    out = {
        "train_loss": mean(nll_train, train), "test_loss": mean(nll_test, test),
        "train_acc": mean(right_train, train), "test_acc": mean(right_test, test),
        "param_norm": param_norm(params), "train_logit": mean(correct_train, train),
    }
    out = {k: v.cpu().numpy() for k, v in out.items()}
    if spec.circuits:
        out.update(circuit_metrics(spec.task, spec.p, logits.cpu().numpy(), data.dataset.label,
                                   data.train_mask.cpu().numpy()))
    return out


def metric_names(spec: ShardSpec) -> list[str]:
    return list(BASE_METRICS) + (list(CIRCUIT_METRICS) if spec.circuits else [])


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


# ---------------------------------------------------------------- the loop


def _accuracy_note(history: dict) -> str:
    train, test = history["train_acc"][-1], history["test_acc"][-1]
    note = f"train acc {train.mean():.2f}"
    return note + (f" test acc {np.nanmean(test):.2f}" if np.isfinite(test).any() else "")


def _check_out_is_ours(out: Path, identity: str, have_checkpoint: bool) -> None:
    """Never overwrite a file that is not this shard's own output."""
    if not out.exists():
        return
    try:
        fmt = file_format(out)
    except StoreError:
        fmt = None
    if fmt is None and not have_checkpoint:
        raise GrokpipeError(f"--out {out} exists and is not a grokpipe shard file; refusing to overwrite it")
    if fmt == SHARD_FORMAT:
        attrs, _ = read_shard(out, with_curves=False)
        if attrs.get("identity") != identity:
            raise GrokpipeError(f"--out {out} holds a different shard; delete it or choose another path")
    elif fmt is not None:
        raise GrokpipeError(f"--out {out} is a {fmt} file, not a shard file; refusing to overwrite it")


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


def train_shard(spec: ShardSpec, out: Path, checkpoint: Path, init_from: Path | None = None,
                device: str = "cpu", threads: int | None = None, experiment: str = "",
                show_progress: bool = True) -> dict:
    """Train (or resume, or finish) a shard; returns the final metrics of every run."""
    out, checkpoint = Path(out), Path(checkpoint)
    configure_cpu(threads or available_cores())
    dev = pick_device(device)
    members = start_optim = None
    if init_from is not None:
        members, start_optim, init_identity = init_from_checkpoint(spec, Path(init_from))
        spec = dataclasses.replace(spec, init_identity=init_identity)
    spec.validate()
    M = len(spec.runs)
    metrics = metric_names(spec)

    state = load_checkpoint(checkpoint) if checkpoint.exists() else None
    if state is not None and state["identity"] != spec.identity:
        raise GrokpipeError(f"checkpoint {checkpoint} belongs to a different shard; delete it or choose another path")
    _check_out_is_ours(out, spec.identity, state is not None)

    # history: one row per evaluation (the steps, and per metric one value per member), kept as
    # lists so an evaluation appends in O(1); arrays are built only for a checkpoint.
    if state is not None:
        params = {k: v.to(dev) for k, v in state["params"].items()}
        step = int(state["step"])
        history = {k: list(v.numpy()) for k, v in state["history"].items()}
        wall = float(state["wall_seconds"])
    else:
        members = members or [init_params(spec.model, r.seed) for r in spec.runs]
        params = {k: v.to(dev) for k, v in stack_params(members).items()}
        step, wall = 0, 0.0
        history = {"eval_step": [], **{m: [] for m in metrics}}
    for p in params.values():
        p.requires_grad_(True)
    opt = EnsembleAdamW(params, [r.lr for r in spec.runs], [r.weight_decay for r in spec.runs], spec.betas)
    if state is not None:
        opt.load_state_dict(state["optim"])
    elif start_optim is not None:
        opt.load_state_dict(start_optim)
    data = ShardData(spec, dev)

    attrs = {"identity": spec.identity, "spec": spec.to_json(), "task": spec.task, "p": spec.p,
             "experiment": experiment}
    run_attrs = [(r.run_id, {"task": spec.task, "p": spec.p, **dataclasses.asdict(r),
                             "init": "checkpoint" if spec.init_identity else "random",
                             **{f"model_{k}": v for k, v in spec.model.as_dict().items()}}) for r in spec.runs]
    def history_arrays():
        return {"eval_step": np.array(history["eval_step"], dtype=np.int64),
                **{m: np.array(history[m], dtype=np.float64).reshape(-1, M) for m in metrics}}

    writer = ShardWriter(out, attrs, run_attrs, metrics, history_arrays(), spec.steps)
    progress = Progress(spec.steps, step, experiment or out.stem, show_progress)

    def record(values):
        history["eval_step"].append(step)
        for m in metrics:
            history[m].append(values[m])
        writer.append(step, values, spec.steps, wall)

    def snapshot():
        return {
            "format": CHECKPOINT_FORMAT, "identity": spec.identity, "spec": spec.to_json(), "step": step,
            "params": {k: v.detach().cpu() for k, v in params.items()}, "optim": opt.state_dict(),
            "history": {k: torch.as_tensor(v) for k, v in history_arrays().items()}, "wall_seconds": wall,
        }

    try:
        with _StopRequest() as stop:
            t_last = time.monotonic()
            while True:
                evaluated = bool(history["eval_step"]) and history["eval_step"][-1] >= step  # steps only grow
                if not evaluated and (spec.schedule.is_eval_step(step) or step == spec.steps):
                    record(evaluate(params, spec, data))
                    progress.update(step, _accuracy_note(history))
                if step >= spec.steps:
                    break
                train_step(params, opt, spec, data)
                step += 1
                now = time.monotonic()
                wall, t_last = wall + now - t_last, now
                if step % spec.checkpoint_every == 0 or stop.signal is not None:
                    save_checkpoint(checkpoint, snapshot())
                    writer.set_progress(step, spec.steps, wall, done=False)
                    progress.update(step)
                if stop.signal is not None:
                    raise GrokpipeError(f"stopped by signal {stop.signal} at step {step}; checkpoint saved, re-run to resume")
            save_checkpoint(checkpoint, snapshot())
            writer.set_progress(step, spec.steps, wall, done=True)
    finally:
        progress.close()
        writer.close()
    return {m: history[m][-1] for m in metrics}

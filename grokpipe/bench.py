"""``grokpipe bench``: the trainer's step against the straightforward implementation, in one process.

The reference computes every position with ``torch.optim.AdamW``, one model at a time, as public
grokking code does; an ensemble of E costs it E single-model steps. Both sides run the same task,
data, model shape, parameters and optimiser state, with the same process settings (threads,
flushed denormals, allocator). A case is

- a *shape*: ``paper`` (p = 113, d_model 128, 4 x 32 heads, d_mlp 512) or ``quick`` (p = 59,
  d_model 64, 4 x 16 heads, d_mlp 256, the quick scale's);
- a *regime*: ``random`` (freshly initialised) or ``fitted`` (trained until the training loss is at
  most 1e-6, where runs spend most of their epochs and float32 values go subnormal);
- D and an ensemble size.

Besides cases, a pipeline checkpoint (``--checkpoint``): its shard's step as the trainer continues
it, from the state where real runs spend their epochs (grokked models put most logits far below the
top one, which neither the random nor the fitted state shows: docs/speed.md, item 6); grokpipe's
side only.

Reported: median steps/s of both, the speed-up, FLOPs per step (grokpipe.model.flops_per_example)
and the share of the machine's float32 matmul rate measured in the same run; and a throughput fit
(seconds per step = E / model_steps_per_s + E D / example_steps_per_s, per shape, fitted regime)
that ``grokpipe plan --throughput`` prices a scale with.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .errors import GrokpipeError
from .model import ModelConfig, flops_per_example, init_params, loss, stack_params
from .optim import EnsembleAdamW
from .reference import reference_forward, tokens_for
from .spec import DEFAULT_BACKEND, RunSpec, ShardSpec
from .train import ShardData, TrainState, configure_cpu, pick_device, train_step

SHAPES = {"paper": (113, dict(d_model=128, n_heads=4, d_head=32, d_mlp=512)),
          "quick": (59, dict(d_model=64, n_heads=4, d_head=16, d_mlp=256))}
REGIMES = ("random", "fitted")
FITTED_LOSS = 1e-6
FIT_LR, FIT_WEIGHT_DECAY, FIT_MAX_STEPS = 3e-3, 1.0, 20_000
MAX_ENSEMBLE = 4096


@dataclass(frozen=True)
class Case:
    shape: str
    regime: str
    D: int
    ensemble: int


DEFAULT_CASES = (
    Case("paper", "random", 3830, 1), Case("paper", "fitted", 3830, 1),
    Case("paper", "random", 1000, 8), Case("paper", "fitted", 3830, 8),
    Case("quick", "random", 1400, 1), Case("quick", "fitted", 1400, 1),
    Case("quick", "fitted", 300, 8), Case("quick", "fitted", 1400, 8),
)


def parse_case(shape: str, regime: str, d: str, ensemble: str) -> Case:
    if shape not in SHAPES:
        raise GrokpipeError(f"--case: unknown shape {shape!r}; choose {' or '.join(SHAPES)}")
    if regime not in REGIMES:
        raise GrokpipeError(f"--case: unknown regime {regime!r}; choose {' or '.join(REGIMES)}")
    try:
        D, E = int(d), int(ensemble)
    except ValueError:
        raise GrokpipeError(f"--case: D and ENSEMBLE must be integers, got {d!r} {ensemble!r}") from None
    p = SHAPES[shape][0]
    if not 1 <= D <= p * p or not 1 <= E <= MAX_ENSEMBLE:
        raise GrokpipeError(f"--case: D must be in [1, {p * p}] and ENSEMBLE in [1, {MAX_ENSEMBLE}], got {D} {E}")
    return Case(shape, regime, D, E)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _calibrated(step, device, min_seconds: float):
    """Warm ``step`` up; return a function timing one batch of steps that lasts ~``min_seconds``."""
    step()
    step()  # warm-up: allocator, kernels
    _sync(device)
    t0 = time.perf_counter()
    step()
    _sync(device)
    n = max(1, int(min_seconds / max(time.perf_counter() - t0, 1e-6)))

    def rate() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        _sync(device)
        return n / (time.perf_counter() - t0)

    return rate


def _steps_per_second(steps, device, min_seconds: float, repeats: int) -> list[float]:
    """Median steps/s of each of ``steps``, timed in turns (one batch of each per repeat), so
    that a slow spell of a shared machine slows them alike and their ratio stays fair."""
    timers = [_calibrated(step, device, min_seconds) for step in steps]
    rates = [[timer() for timer in timers] for _ in range(repeats)]
    return [statistics.median(column) for column in zip(*rates)]


def matmul_gflops(device: torch.device, size: int = 2048) -> float:
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    (rate,) = _steps_per_second([lambda: a @ b], device, 0.3, 3)
    return 2 * size**3 * rate / 1e9


def _model(shape: str) -> ModelConfig:
    p, widths = SHAPES[shape]
    return ModelConfig(n=p, **widths)


def _spec(shape: str, D: int, ensemble: int) -> ShardSpec:
    run = RunSpec(n_train=D, weight_decay=FIT_WEIGHT_DECAY, seed=0, lr=FIT_LR)  # every member on the same data
    return ShardSpec(task="add", p=SHAPES[shape][0], model=_model(shape), runs=(run,) * ensemble, steps=1)


def fitted_member(shape: str, D: int, device: torch.device, max_steps: int = FIT_MAX_STEPS) -> tuple[dict, dict, int, float]:
    """One model trained (full batch, AdamW lr 3e-3, wd 1) until its training loss is <= 1e-6 (or
    ``max_steps``): parameters, optimiser state, steps taken and the loss reached."""
    spec = _spec(shape, D, 1)
    data = ShardData(spec, device)
    params = {k: v.to(device).requires_grad_() for k, v in stack_params([init_params(spec.model, 0)]).items()}
    opt = EnsembleAdamW(params, [FIT_LR], [FIT_WEIGHT_DECAY], spec.betas)
    (only,) = data.passes
    current = float("inf")
    for step in range(1, max_steps + 1):
        train_step(params, opt, spec, data)
        if step % 50 == 0:
            with torch.no_grad():
                current = float(loss(params, spec.model, only.batch, only.labels, only.weight))
            if current <= FITTED_LOSS:
                break
    return ({k: v.detach() for k, v in params.items()}, opt.state_dict(), step, current)


def _state(case: Case, device: torch.device, fitted: dict) -> tuple[dict, dict | None]:
    """Parameters (and optimiser state) of every member for a case."""
    spec = _spec(case.shape, case.D, case.ensemble)
    if case.regime == "random":
        return stack_params([init_params(spec.model, s) for s in range(case.ensemble)]), None
    params, optim, _, _ = fitted[(case.shape, case.D)]
    repeat = lambda t: t.repeat(case.ensemble, *([1] * (t.dim() - 1))).clone()  # noqa: E731
    return ({k: repeat(v) for k, v in params.items()},
            {"step_count": optim["step_count"], **{m: {k: repeat(v) for k, v in optim[m].items()}
                                                   for m in ("exp_avg", "exp_avg_sq")}})


def _fast_step(case: Case, device: torch.device, fitted: dict, backend: str = DEFAULT_BACKEND):
    spec = _spec(case.shape, case.D, case.ensemble)
    data = ShardData(spec, device, backend=backend)
    stacked, optim = _state(case, device, fitted)
    params = {k: v.to(device).clone().requires_grad_() for k, v in stacked.items()}
    opt = EnsembleAdamW(params, [r.lr for r in spec.runs], [r.weight_decay for r in spec.runs], spec.betas)
    if optim is not None:
        opt.load_state_dict(optim)
    return lambda: train_step(params, opt, spec, data), spec, data


def _reference_step(case: Case, spec: ShardSpec, data: ShardData, device: torch.device, fitted: dict):
    stacked, optim = _state(Case(case.shape, case.regime, case.D, 1), device, fitted)
    params = {k: v[0].to(device).clone().requires_grad_() for k, v in stacked.items()}
    run = spec.runs[0]
    opt = torch.optim.AdamW(list(params.values()), lr=run.lr, weight_decay=run.weight_decay, betas=spec.betas)
    if optim is not None:  # the same moments and step count as the fast side
        for name, p in params.items():
            opt.state[p] = {"step": torch.tensor(float(optim["step_count"])),
                            "exp_avg": optim["exp_avg"][name][0].to(device).clone(),
                            "exp_avg_sq": optim["exp_avg_sq"][name][0].to(device).clone()}
    (first, *_) = data.passes
    tokens = tokens_for(spec.model, first.batch.x[0], first.batch.y[0])
    labels = first.labels[0]

    def step():  # loss in float64 on the last position, as public grokking code and grokpipe's trainer compute it
        opt.zero_grad()
        logits = reference_forward(params, spec.model, tokens)[:, -1].double()
        torch.nn.functional.cross_entropy(logits, labels).backward()
        opt.step()

    return step


def _shape_name(spec: ShardSpec) -> str:
    """``paper`` or ``quick`` when a shard has one of those shapes, else its modulus and widths."""
    for name, (p, _) in SHAPES.items():
        if spec.p == p and spec.model == _model(name):
            return name
    m = spec.model
    return f"p={spec.p} d={m.d_model} h={m.n_heads}x{m.d_head} mlp={m.d_mlp}"


def _checkpoint_step(path: Path, device: torch.device, backend: str):
    """A pipeline checkpoint's training step, as the trainer continues it."""
    state = load_checkpoint(path)
    spec = ShardSpec.from_json(state["spec"], f"--checkpoint {path}")
    train_state = TrainState.restore(spec, state, device)
    data = ShardData(spec, device, backend=backend)
    return (lambda: train_step(train_state.params, train_state.opt, spec, data)), spec


def _rates(spec: ShardSpec, steps_per_s: float, peak_gflops: float) -> dict:
    """A timed shard's rates: steps and model-steps per second, grokpipe's FLOPs per step (forward
    and backward over every member's examples) and their share of the measured matmul rate."""
    flops_step = 3 * flops_per_example(spec.model)["fast"] * sum(r.n_train for r in spec.runs)
    return {"steps_per_s": steps_per_s, "model_steps_per_s": steps_per_s * len(spec.runs), "flops_per_step": flops_step,
            "percent_of_matmul_rate": 100 * flops_step * steps_per_s / (peak_gflops * 1e9)}


def fit_throughput(cases: list[dict]) -> dict | None:
    """Non-negative least squares of seconds per step = E / model_steps_per_s + E D / example_steps_per_s
    over the cases given (a term the data cannot see gets a rate of 1e12); None without two D."""
    if len({c["D"] for c in cases}) < 2:
        return None
    A = np.array([[c["ensemble"], c["ensemble"] * c["D"]] for c in cases], dtype=float)
    y = np.array([1 / c["steps_per_s"] for c in cases])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    if np.any(coef <= 0):  # one term alone, the other free
        alone = [float(np.linalg.lstsq(A[:, [k]], y, rcond=None)[0][0]) for k in (0, 1)]
        errors = [np.sum((A[:, k] * alone[k] - y) ** 2) for k in (0, 1)]
        best = int(np.argmin(errors))
        coef = np.array([alone[0] if best == 0 else 1e-12, alone[1] if best == 1 else 1e-12])
    return {"model_steps_per_s": float(1 / coef[0]), "example_steps_per_s": float(1 / coef[1]),
            "cases": len(cases)}


def run_bench(cases=DEFAULT_CASES, device: str = "cpu", threads: int = 2, min_seconds: float = 1.0,
              repeats: int = 5, reference_up_to: int = MAX_ENSEMBLE, flush_denormals: bool = True,
              backend: str = DEFAULT_BACKEND, fit_max_steps: int = FIT_MAX_STEPS, checkpoints=()) -> dict:
    """Time every case; the reference only for ensembles of at most ``reference_up_to`` models
    (it trains them one after another, which takes long for large ensembles on a GPU)."""
    flushed = configure_cpu(threads)  # the reference, in the same process, gets the same settings
    if not flush_denormals:  # to measure what flushing is worth (docs/speed.md)
        torch.set_flush_denormal(False)
        flushed = False
    dev = pick_device(device)
    from_checkpoints = [(path, *_checkpoint_step(Path(path), dev, backend)) for path in checkpoints]  # bad ones fail first
    peak = matmul_gflops(dev)
    fitted = {}
    for shape, D in sorted({(c.shape, c.D) for c in cases if c.regime == "fitted"}):
        fitted[(shape, D)] = fitted_member(shape, D, dev, fit_max_steps)
    results = []
    for case in cases:
        fast, spec, data = _fast_step(case, dev, fitted, backend)
        reference = case.ensemble <= reference_up_to
        steps = [fast] + ([_reference_step(case, spec, data, dev, fitted)] if reference else [])
        rates = _steps_per_second(steps, dev, min_seconds, repeats)
        row = {"shape": case.shape, "regime": case.regime, "D": case.D, "ensemble": case.ensemble,
               **_rates(spec, rates[0], peak)}
        if case.regime == "fitted":
            _, _, fit_steps, fit_loss = fitted[(case.shape, case.D)]
            row.update(fitted_after_steps=fit_steps, fitted_train_loss=fit_loss)
        if reference:
            ref = rates[1] / case.ensemble  # the reference trains the members one after another
            row.update(reference_steps_per_s=ref, speedup=rates[0] / ref,
                       reference_flops_per_step=3 * flops_per_example(spec.model)["reference"] * case.D * case.ensemble)
        results.append(row)
    for path, step, spec in from_checkpoints:
        (rate,) = _steps_per_second([step], dev, min_seconds, repeats)
        results.append({"shape": _shape_name(spec), "regime": "checkpoint", "checkpoint": str(path),
                        "D": max(r.n_train for r in spec.runs), "ensemble": len(spec.runs), **_rates(spec, rate, peak)})
    throughput = {shape: fit for shape in SHAPES
                  if (fit := fit_throughput([r for r in results if r["shape"] == shape and r["regime"] == "fitted"]))}
    from .provenance import cpu_model, mkl_reproducible_branch

    name = torch.cuda.get_device_name() if dev.type == "cuda" else cpu_model()
    return {"device": str(dev), "device_name": name, "threads": threads, "denormals_flushed": bool(flushed),
            "backend": backend, "mkl_reproducible_branch": mkl_reproducible_branch(dev.type),
            "matmul_gflops": peak, "torch": torch.__version__, "cases": results, "throughput": throughput}


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"grokpipe bench: {report['device_name']} ({report['device']}), {report['threads']} threads, "
                        f"matmul {report['matmul_gflops']:.0f} GFLOP/s (float32), denormals "
                        f"{'flushed' if report['denormals_flushed'] else 'kept'}"
                        + (f", MKL branch {report['mkl_reproducible_branch']}" if report.get("mkl_reproducible_branch") else ""))
    for col in ("shape", "regime", "D", "ensemble", "reference steps/s", "grokpipe steps/s", "speed-up", "GFLOP/step",
                "% of matmul rate"):
        table.add_column(col, justify="right")
    for c in report["cases"]:
        ref = c.get("reference_steps_per_s")
        table.add_row(c["shape"], c["regime"], str(c["D"]), str(c["ensemble"]), f"{ref:.2f}" if ref else "-",
                      f"{c['steps_per_s']:.2f}", f"{c['speedup']:.1f}x" if ref else "-",
                      f"{c['flops_per_step'] / 1e9:.2f}", f"{c['percent_of_matmul_rate']:.0f}%")
    console = Console()
    console.print(table)
    for shape, fit in report["throughput"].items():
        console.print(f"{shape} shape, fitted regime: {fit['model_steps_per_s']:.0f} model-steps/s and "
                      f"{fit['example_steps_per_s']:.3g} example-steps/s (grokpipe plan --throughput)")

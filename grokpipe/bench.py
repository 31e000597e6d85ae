"""``grokpipe bench``: the trainer's step against the straightforward implementation, in one process.

The reference computes every position with ``torch.optim.AdamW``, one model at a time, as public
grokking code does; an ensemble of E costs it E single-model steps. Both run the same task,
data and paper-sized model (p = 113, d_model 128, 4 x 32 heads, d_mlp 512). Reported: median
steps/s, the speed-up, FLOPs per step (from :func:`grokpipe.model.flops_per_example`) and the
share of the machine's float32 matmul rate measured in the same run.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch

from .model import ModelConfig, flops_per_example, init_params, stack_params
from .optim import EnsembleAdamW
from .reference import reference_forward, tokens_for
from .spec import RunSpec, ShardSpec
from .train import ShardData, configure_cpu, pick_device, train_step

DEFAULT_CASES = ((1000, 1), (3830, 1), (12769, 1), (1000, 8), (3830, 8))


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


def _fast_step(cfg: ModelConfig, D: int, ensemble: int, device: torch.device):
    runs = tuple(RunSpec(n_train=D, weight_decay=1.0, seed=s) for s in range(ensemble))
    spec = ShardSpec(task="add", p=113, model=cfg, runs=runs, steps=1)
    data = ShardData(spec, device)
    params = {k: v.to(device).requires_grad_() for k, v in
              stack_params([init_params(cfg, r.seed) for r in runs]).items()}
    opt = EnsembleAdamW(params, [r.lr for r in runs], [r.weight_decay for r in runs], spec.betas)
    return lambda: train_step(params, opt, spec, data), data


def _reference_step(cfg: ModelConfig, data: ShardData, device: torch.device):
    params = {k: v.to(device).requires_grad_() for k, v in init_params(cfg, 0).items()}
    opt = torch.optim.AdamW(list(params.values()), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))
    tokens = tokens_for(cfg, data.x[0], data.y[0])
    labels = data.labels[0]

    def step():  # loss in float64 on the last position, as public grokking code and grokpipe's trainer compute it
        opt.zero_grad()
        logits = reference_forward(params, cfg, tokens)[:, -1].double()
        torch.nn.functional.cross_entropy(logits, labels).backward()
        opt.step()

    return step


def run_bench(cases=DEFAULT_CASES, device: str = "cpu", threads: int = 2, min_seconds: float = 1.0,
              repeats: int = 5) -> dict:
    configure_cpu(threads)  # the reference, in the same process, gets the same allocator
    dev = pick_device(device)
    cfg = ModelConfig(n=113)
    flops = flops_per_example(cfg)
    peak = matmul_gflops(dev)
    results = []
    for D, ensemble in cases:
        fast, data = _fast_step(cfg, D, ensemble, dev)
        rate, reference = _steps_per_second([fast, _reference_step(cfg, data, dev)], dev, min_seconds, repeats)
        ref = reference / ensemble  # the reference trains the members one after another
        flops_step = 3 * flops["fast"] * D * ensemble
        results.append({
            "D": D, "ensemble": ensemble, "reference_steps_per_s": ref, "steps_per_s": rate,
            "speedup": rate / ref, "flops_per_step": flops_step,
            "reference_flops_per_step": 3 * flops["reference"] * D * ensemble,
            "percent_of_matmul_rate": 100 * flops_step * rate / (peak * 1e9),
        })
    return {"device": str(dev), "threads": threads, "matmul_gflops": peak, "torch": torch.__version__, "cases": results}


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"grokpipe bench: {report['device']}, {report['threads']} threads, "
                        f"matmul {report['matmul_gflops']:.0f} GFLOP/s (float32)")
    for col in ("D", "ensemble", "reference steps/s", "grokpipe steps/s", "speed-up", "GFLOP/step", "% of matmul rate"):
        table.add_column(col, justify="right")
    for c in report["cases"]:
        table.add_row(str(c["D"]), str(c["ensemble"]), f"{c['reference_steps_per_s']:.2f}", f"{c['steps_per_s']:.2f}",
                      f"{c['speedup']:.1f}x", f"{c['flops_per_step'] / 1e9:.2f}", f"{c['percent_of_matmul_rate']:.0f}%")
    Console().print(table)


def write_json(report: dict, path: Path) -> None:
    Path(path).write_text(json.dumps(report, indent=2))

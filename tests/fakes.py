"""Shard files with known, deterministic contents, written through the real ShardWriter."""

from pathlib import Path

import numpy as np

from grokpipe.spec import NUMERICS_VERSION
from grokpipe.store import BASE_METRICS, ShardWriter

# fixed, so that snapshots do not change with the checkout's commit or the machine
PROVENANCE = {"grokpipe_version": "0.2.0", "numerics_version": NUMERICS_VERSION, "git_commit": "0123456789abcdef",
              "git_dirty": False, "torch_version": "2.13.0", "numpy_version": "2.4.6", "device_name": "Test CPU",
              "threads": 1, "denormals_flushed": True}


def write_shard(path: Path, experiment: str, runs: list[tuple[int, float, int]], evals: int = 20,
                steps_per_eval: int = 100, done: bool = True, task: str = "add") -> ShardWriter | None:
    """A shard of runs (D, weight decay, seed) whose test accuracy rises later for smaller D, and
    whose parameter norm and logit settle halfway through (so they count as converged)."""
    run_attrs = [(f"r{d}-{wd:g}-{seed}", {"task": task, "p": 59, "n_train": d, "weight_decay": wd, "seed": seed,
                                           "lr": 0.003, "random_labels": False, "init": "random"})
                 for d, wd, seed in runs]
    steps = np.arange(evals) * steps_per_eval
    history = {"eval_step": steps, "eval_wall": steps / 100.0}  # 100 steps a second
    for m in BASE_METRICS:
        cols = []
        for d, wd, seed in runs:
            t = steps / steps[-1] if evals > 1 else steps
            settled = np.minimum(2 * t, 1)  # norm and logit settle halfway: converged runs
            curve = {"train_acc": np.minimum(1, 10 * t + 0.1), "test_acc": 1 / (1 + np.exp(-(t - 2000 / d) * 12)),
                     "train_loss": np.exp(-8 * t) * 4, "test_loss": np.exp(-3 * t) * 5 + 0.01,
                     "param_norm": 30 - 5 * settled * wd, "train_logit": 10 + 20 * settled * (d / 200) ** -0.3}[m]
            cols.append(curve + 0.001 * seed)
        history[m] = np.column_stack(cols)
    total = (evals - 1) * steps_per_eval
    attrs = {"identity": path.stem, "spec": "{}", "task": task, "p": 59, "experiment": experiment, **PROVENANCE}
    writer = ShardWriter(path, attrs, run_attrs, list(BASE_METRICS), history, total)
    writer.set_progress(total, total if done else 2 * total, 10.0, done=done)
    if done:
        writer.close()
        return None
    return writer

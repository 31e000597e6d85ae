"""Shard files with known, deterministic contents, written through the real ShardWriter."""

from pathlib import Path

import numpy as np

from grokpipe.store import BASE_METRICS, ShardWriter


def write_shard(path: Path, experiment: str, runs: list[tuple[int, float, int]], evals: int = 20,
                steps_per_eval: int = 100, done: bool = True, task: str = "add") -> ShardWriter | None:
    """A shard of runs (D, weight decay, seed) whose test accuracy rises later for smaller D."""
    run_attrs = [(f"r{d}-{wd:g}-{seed}", {"task": task, "p": 59, "n_train": d, "weight_decay": wd, "seed": seed,
                                           "lr": 0.003, "random_labels": False, "init": "random"})
                 for d, wd, seed in runs]
    steps = np.arange(evals) * steps_per_eval
    history = {"eval_step": steps}
    for m in BASE_METRICS:
        cols = []
        for d, wd, seed in runs:
            t = steps / steps[-1] if evals > 1 else steps
            curve = {"train_acc": np.minimum(1, 10 * t + 0.1), "test_acc": 1 / (1 + np.exp(-(t - 2000 / d) * 12)),
                     "train_loss": np.exp(-8 * t) * 4, "test_loss": np.exp(-3 * t) * 5 + 0.01,
                     "param_norm": 30 - 5 * t * wd, "train_logit": 10 + 20 * t}[m]
            cols.append(curve + 0.001 * seed)
        history[m] = np.column_stack(cols)
    total = (evals - 1) * steps_per_eval
    writer = ShardWriter(path, {"identity": path.stem, "spec": "{}", "task": task, "p": 59, "experiment": experiment},
                         run_attrs, list(BASE_METRICS), history, total)
    writer.set_progress(total, total if done else 2 * total, 10.0, done=done)
    if done:
        writer.close()
        return None
    return writer

"""How long `grokpipe tui` takes to show a results directory with thousands of runs.

    python benchmarks/tui_open.py --shards 250 --runs-per-shard 8 --evals 300

Writes the shard files (through the real ShardWriter) into a temporary directory, starts the app
headless (Textual's Pilot) and times until every run is a row of the table. Target: under 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np

from grokpipe.provenance import collect
from grokpipe.spec import DEFAULT_BACKEND
from grokpipe.store import BASE_METRICS, ShardWriter


def write_results(root: Path, shards: int, runs_per_shard: int, evals: int) -> None:
    steps = np.arange(evals) * 100
    for s in range(shards):
        runs = [(f"r{i}", {"task": "add", "p": 59, "n_train": 100 + 10 * i, "weight_decay": 1.0, "seed": s,
                           "lr": 0.01, "random_labels": False, "init": "random"}) for i in range(runs_per_shard)]
        history = {"eval_step": steps, **{m: np.random.default_rng(s).random((evals, runs_per_shard))
                                          for m in BASE_METRICS}}
        writer = ShardWriter(root / "runs" / "ungrok" / f"add-{s:010x}.h5", {"identity": str(s), "spec": "{}",
                             "task": "add", "p": 59, "experiment": "ungrok", **collect("cpu", 1, True, DEFAULT_BACKEND, False)}, runs,
                             list(BASE_METRICS), history, 1000)
        writer.set_progress(1000, 1000, 10.0, done=True)
        writer.close()


async def time_to_table(root: Path, expected: int) -> float:
    from grokpipe.tui.app import GrokpipeApp
    from grokpipe.tui.widgets.run_table import RunTable

    start = time.perf_counter()
    app = GrokpipeApp(root, refresh_seconds=3600)
    async with app.run_test(size=(160, 45)) as pilot:
        while not app.screen.query(RunTable) or app.screen.query_one(RunTable).row_count < expected:
            await pilot.pause(0.01)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=250)
    parser.add_argument("--runs-per-shard", type=int, default=8)
    parser.add_argument("--evals", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        write_results(root, args.shards, args.runs_per_shard, args.evals)
        runs = args.shards * args.runs_per_shard
        seconds = asyncio.run(time_to_table(root, runs))
    print(f"{runs} runs in {args.shards} shard files ({args.evals} evaluations each): table full after {seconds:.2f} s "
          f"(target < 2 s)")


if __name__ == "__main__":
    main()

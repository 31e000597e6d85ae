"""Soak: writer processes train shards while readers poll every file, as the TUI does.

    python benchmarks/soak_readers.py --writers 8 --minutes 10

Writers run `grokpipe train` (one thread each) on small shards in a loop; two reader processes
scan as the TUI does (`grokpipe.monitor.ResultsScanner`) and read every file with `read_shard` continuously. Counted: reader
crashes (any exception), torn reads (curves of unequal length, or steps going backwards), and at
the end whether every writer's final file is complete. Exits 1 on any problem.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARGS = ["--task", "add", "--p", "23", "--d-model", "16", "--n-heads", "2", "--d-head", "8", "--d-mlp", "32",
        "--lr", "1e-2", "--threads", "1", "--quiet", "--n-train", "200", "--seed", "0", "1",
        "--steps", "4000", "--eval-every", "10", "--checkpoint-every", "500"]


def writer(index: int, root: Path, deadline: float, done: "mp.Queue") -> None:
    rounds = 0
    while time.time() < deadline:
        out = root / "runs" / "soak" / f"add-{index:02d}{rounds:08d}.h5"
        proc = subprocess.run([sys.executable, "-m", "grokpipe", "train", *ARGS, "--out", str(out)])
        done.put((str(out), proc.returncode))
        rounds += 1


def reader(root: Path, deadline: float, report: "mp.Queue") -> None:
    from grokpipe.monitor import ResultsScanner
    from grokpipe.store import StoreError, read_shard

    scanner = ResultsScanner(root)
    reads = crashes = torn = 0
    last_step: dict = {}
    while time.time() < deadline:
        try:
            for shard in scanner.scan():
                if shard.state == "unreadable":
                    continue  # a file being set up: retried next round, as the TUI does
                try:
                    runs = read_shard(shard.path).runs
                except StoreError:
                    continue
                reads += 1
                for run in runs:
                    lengths = {len(run.eval_step)} | {len(c) for c in run.curves.values()}
                    key = (shard.path, run.run_id)
                    if len(lengths) != 1 or len(run.eval_step) < last_step.get(key, 0):
                        torn += 1
                    last_step[key] = len(run.eval_step)
        except Exception as e:  # noqa: BLE001 - counting every crash is the point
            crashes += 1
            print(f"reader crash: {type(e).__name__}: {e}", flush=True)
    report.put((reads, crashes, torn))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        deadline = time.time() + 60 * args.minutes
        done, report = mp.Queue(), mp.Queue()
        procs = [mp.Process(target=writer, args=(i, root, deadline, done)) for i in range(args.writers)]
        procs += [mp.Process(target=reader, args=(root, deadline + 5, report)) for _ in range(args.readers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        from grokpipe.store import read_shard

        finished = incomplete = 0
        while not done.empty():
            path, code = done.get()
            if code != 0:
                incomplete += 1
                continue
            runs = read_shard(Path(path)).runs
            complete = all(r.progress["done"] and r.eval_step[-1] == 4000 for r in runs)
            finished += complete
            incomplete += not complete
        reads = crashes = torn = 0
        while not report.empty():
            r, c, t = report.get()
            reads, crashes, torn = reads + r, crashes + c, torn + t
    print(f"writers {args.writers}, readers {args.readers}, {args.minutes:g} min: {finished} shard files complete, "
          f"{incomplete} incomplete; {reads} reads, {crashes} reader crashes, {torn} torn reads")
    return 1 if crashes or torn or incomplete else 0


if __name__ == "__main__":
    sys.exit(main())

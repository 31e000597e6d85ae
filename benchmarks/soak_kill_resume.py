"""Soak: SIGKILL `grokpipe train` at random moments, re-run the same command, and check that the
final curves and parameters are bit-identical to an uninterrupted run.

    python benchmarks/soak_kill_resume.py --trials 20

Each trial kills the run 1-4 times at random moments (mid-step, mid-checkpoint, mid-HDF5-write,
wherever it lands), then lets it finish. Prints one line per trial and a summary; exits 1 on any
difference.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from grokpipe.checkpoint import load_checkpoint
from grokpipe.store import read_shard

ARGS = ["--task", "add", "--p", "23", "--d-model", "32", "--n-heads", "4", "--d-head", "8", "--d-mlp", "64",
        "--lr", "3e-3", "--threads", "1", "--quiet", "--n-train", "150", "250", "--seed", "0", "1",
        "--steps", "3000", "--checkpoint-every", "137", "--eval-every", "50", "--circuits"]


def train(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "grokpipe", "train", *ARGS, "--out", str(out)])


def same(a: Path, b: Path) -> list[str]:
    problems = []
    runs_a = read_shard(a).runs
    runs_b = read_shard(b).runs
    for ra, rb in zip(sorted(runs_a, key=lambda r: r.run_id), sorted(runs_b, key=lambda r: r.run_id)):
        if not np.array_equal(ra.eval_step, rb.eval_step):
            problems.append(f"{ra.run_id}: eval steps differ")
        for m in ra.curves:
            if not np.array_equal(ra.curves[m], rb.curves[m], equal_nan=True):
                problems.append(f"{ra.run_id}: {m} differs")
    pa, pb = load_checkpoint(a.with_suffix(".pt"))["params"], load_checkpoint(b.with_suffix(".pt"))["params"]
    problems += [f"parameter {k} differs" for k in pa if not torch.equal(pa[k], pb[k])]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.monotonic()
        assert train(tmp / "reference.h5").wait() == 0
        duration = time.monotonic() - t0
        for trial in range(args.trials):
            out = tmp / f"trial{trial}.h5"
            kills = rng.randint(1, 4)
            for _ in range(kills):
                proc = train(out)
                time.sleep(rng.uniform(0.3, duration * 0.6))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            assert train(out).wait() == 0, f"trial {trial}: the resumed run failed"
            problems = same(tmp / "reference.h5", out)
            failures += bool(problems)
            print(f"trial {trial:2d}: {kills} kill(s): {'identical' if not problems else '; '.join(problems[:3])}",
                  flush=True)
    print(f"{args.trials - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

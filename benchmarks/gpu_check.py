"""The GPU check: one command, about 5 minutes on an H100, that proves and prices the CUDA path.

    python benchmarks/gpu_check.py OUT_DIR                 # on a GPU machine
    python benchmarks/gpu_check.py OUT_DIR --device cpu --small   # the same steps, tiny, on a CPU

It needs only Python with torch (CUDA), numpy, h5py, rich, pyyaml and pytest: no Snakemake, Textual,
jsonschema or network (run it from a checkout with ``PYTHONPATH=.``). Steps, each logged:

1. ``nvidia-smi``;
2. ``pytest -m cuda tests/test_cuda.py``: the fast model against the reference in float64 on CUDA
   (both backward backends), the optimiser against ``torch.optim.AdamW``, a short train and
   resume on CUDA that gives the CPU's numbers within float tolerances, and, with deterministic
   algorithms, a shard trained twice to the same bits and a stopped run that leaves its mates'
   bits alone (gather; the sparse backend is expected to fail that one: docs/speed.md, "GPU");
3. ``grokpipe bench`` on the device: the paper's shape at D = 3830 with ensembles 1, 8, 32 and 64,
   random and fitted regimes, both backward backends (reference only for single models);
4. one paper-scale shard per backward backend, with and without deterministic algorithms
   (``grokpipe train --deterministic``): 64 ungrok-sized runs of the paper's model for 2000 steps,
   through the trainer (evaluations, checkpoint, shard file): model-steps/s and peak GPU memory.

Writes ``OUT_DIR/gpu-check.json`` (tagged ``grokpipe-gpu-check-1``; ``grokpipe plan --throughput``
reads its fitted throughput) and ``OUT_DIR/gpu-check.log``. Exit code 0 when every step ran.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Log:
    def __init__(self, path: Path):
        self.file = open(path, "w")

    def __call__(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


def run_command(log: Log, cmd: list[str], timeout: float) -> dict:
    start = time.monotonic()
    try:
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        # no third-party pytest plugins: the GPU machine has none, and some would import Textual
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": path, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
        output, code = done.stdout + done.stderr, done.returncode
    except (OSError, subprocess.TimeoutExpired) as e:
        output, code = str(e), -1
    log(f"$ {' '.join(cmd)}  (exit {code}, {time.monotonic() - start:.0f} s)\n{output[-6000:]}")
    return {"command": " ".join(cmd), "exit": code, "seconds": time.monotonic() - start, "tail": output[-2000:]}


def paper_shard(log: Log, device: str, small: bool, out_dir: Path, backend: str, deterministic: bool) -> dict:
    """64 runs of the paper's model (ungrok sizes, random start) for 2000 steps, through the trainer."""
    import torch

    from grokpipe.spec import EvalSchedule, ModelConfig, RunSpec, ShardSpec
    from grokpipe.train import train_shard

    if small:
        p, model, sizes, members, steps = 11, ModelConfig(11, 16, 2, 8, 32), [30, 60, 90], 4, 50
    else:
        p, model, steps = 113, ModelConfig(113), 2000
        sizes, members = [390, 488, 610, 763, 954, 1194, 1494, 2000], 64
    runs = tuple(RunSpec(sizes[i % len(sizes)], 1.0, i, 1e-3) for i in range(members))
    spec = ShardSpec("add", p, model, runs, steps, schedule=EvalSchedule(every=max(steps // 20, 1), per_decade=0),
                     checkpoint_every=steps)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.monotonic()
    shard_dir = out_dir / "shard"
    shutil.rmtree(shard_dir, ignore_errors=True)
    train_shard(spec, shard_dir / "paper.h5", shard_dir / "paper.pt", device=device, show_progress=False, backend=backend,
                deterministic=deterministic)
    seconds = time.monotonic() - start
    result = {"backend": backend, "deterministic": deterministic, "runs": members, "steps": steps, "mean_D": sum(r.n_train for r in runs) / members, "seconds": seconds,
              "model_steps_per_s": members * steps / seconds,
              "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None}
    log(f"paper-scale shard: {json.dumps(result)}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--small", action="store_true", help="tiny sizes: a dry run of every step (CPU, in the tests)")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    log = Log(args.out_dir / "gpu-check.log")
    sys.path.insert(0, str(REPO))
    report: dict = {"device": args.device, "small": args.small, "steps": {}, "ok": False}
    from grokpipe.files import write_json

    def save() -> None:
        """Written after every step, so a run cut off by the lease's time limit still leaves its numbers."""
        write_json(args.out_dir / "gpu-check.json", "gpu-check", report)
    nvidia = shutil.which("nvidia-smi")
    report["steps"]["nvidia-smi"] = run_command(log, [nvidia], 60) if nvidia else {"exit": None, "tail": "not found"}
    report["steps"]["pytest"] = run_command(log, [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p",
                                                  "no:cacheprovider", "tests/test_cuda.py"], 600)
    save()
    from grokpipe.bench import Case, run_bench
    from grokpipe.spec import BACKENDS

    shape, D, other_D, ensembles = ("quick", 100, 300, (1, 2)) if args.small else ("paper", 3830, 1000, (1, 8, 32, 64))
    cases = [Case(shape, regime, D, e) for regime in ("random", "fitted") for e in ensembles]
    cases += [Case(shape, "fitted", other_D, e) for e in ensembles[1:]]  # a second D: the throughput fit needs two
    bench = {}
    for backend in BACKENDS:
        start = time.monotonic()
        bench[backend] = run_bench(cases, args.device, threads=1 if args.small else 2,
                                   min_seconds=0.01 if args.small else 0.5, repeats=1 if args.small else 3,
                                   reference_up_to=1, backend=backend, fit_max_steps=100 if args.small else 20_000)
        bench[backend]["seconds"] = time.monotonic() - start
        report["bench"] = bench
        save()
        for c in bench[backend]["cases"]:
            log(f"bench {backend} {c['shape']} {c['regime']} D={c['D']} x{c['ensemble']}: {c['steps_per_s']:.1f} steps/s, "
                f"{c['model_steps_per_s']:.0f} model-steps/s" + (f", {c['speedup']:.1f}x the reference"
                                                                  if "speedup" in c else ""))
    best = max(bench, key=lambda b: max(c["model_steps_per_s"] for c in bench[b]["cases"]))
    report["throughput"] = {"backend": best, **bench[best]["throughput"].get(shape, {})}  # grokpipe plan --throughput
    report["paper_shard"] = {}
    for deterministic in (False, True):  # what --deterministic costs, for each backend
        for backend in bench:  # the bench's ensembles say which backend is faster; the trainer settles it
            name = backend + (" deterministic" if deterministic else "")
            report["paper_shard"][name] = paper_shard(log, args.device, args.small, args.out_dir, backend, deterministic)
            save()
    ok = report["steps"]["pytest"]["exit"] in (0, 5)  # 5: no test collected (no CUDA: every test skipped)
    report["ok"] = ok
    save()
    log(f"wrote {args.out_dir / 'gpu-check.json'}; {'every step ran' if ok else 'a step failed: see above'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
